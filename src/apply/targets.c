/* This file contains the registry of target types (target.h): one line per type. */
#include "apply/target.h"

#include "apply/sqlite.h"

#include <stddef.h>

const cw_target_ops_t *cw_target_ops_for(cw_target_type_t type)
{
	switch (type) {
	case CW_TARGET_SQLITE: return &cw_sqlite_target_ops;
	case CW_TARGET_POSTGRES: return NULL;
	case CW_TARGET_MONGODB: return NULL;
	}
	return NULL;
}
