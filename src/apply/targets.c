/* This file contains the registry of target types (target.h): one line per backend. */
#include "apply/target.h"

#include "apply/apply_loop.h"
#include "apply/mongodb_target.h"
#include "apply/postgres_target.h"
#include "apply/sqlite.h"

#include <stddef.h>

const cw_target_backend_t *cw_target_backend_for(cw_target_type_t type)
{
	switch (type) {
	case CW_TARGET_SQLITE: return &cw_sqlite_backend;
	case CW_TARGET_POSTGRES: return &cw_postgres_backend;
	case CW_TARGET_MONGODB: return &cw_mongodb_backend;
	}
	return NULL;
}

const cw_target_ops_t *cw_target_ops_for(cw_target_type_t type)
{
	return cw_target_backend_for(type) != NULL ? &cw_apply_target_ops : NULL;
}
