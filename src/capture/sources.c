/* This file contains the registry of source types (source.h): one line per type. */
#include "capture/source.h"

#include "capture/mongo.h"

#include <stddef.h>

extern const cw_source_ops_t cw_postgres_source_ops;

const cw_source_ops_t *cw_source_ops_for(cw_source_type_t type)
{
	switch (type) {
	case CW_SOURCE_POSTGRES: return &cw_postgres_source_ops;
	case CW_SOURCE_MONGODB: return &cw_mongo_source_ops;
	}
	return NULL;
}
