/* This file contains the registry of source types (source.h): one line per type. */
#include "capture/source.h"

#include "capture/mongo.h"

#include <stddef.h>

extern const cw_source_ops_t cw_postgres_source_ops;
extern const cw_source_ops_t cw_mysql_source_ops;
/* postgres_check.c */
int cw_pg_check_entity(const cw_source_config_t *cfg, const cw_entity_t *entity, cw_err_t *err);
/* mysql.c */
int cw_mysql_check_entity(const cw_source_config_t *cfg, const cw_entity_t *entity, cw_err_t *err);

const cw_source_ops_t *cw_source_ops_for(cw_source_type_t type)
{
	switch (type) {
	case CW_SOURCE_POSTGRES: return &cw_postgres_source_ops;
	case CW_SOURCE_MONGODB: return &cw_mongo_source_ops;
	case CW_SOURCE_MYSQL: return &cw_mysql_source_ops;
	}
	return NULL;
}

int cw_source_check_entity(const cw_config_t *config, const cw_entity_t *entity, cw_err_t *err)
{
	const cw_source_config_t *source = cw_config_source(config, entity->source);
	if (source == NULL || entity->table == NULL)
		return 0;
	switch (source->type) {
	case CW_SOURCE_POSTGRES: return cw_pg_check_entity(source, entity, err);
	case CW_SOURCE_MONGODB: return 0;
	case CW_SOURCE_MYSQL: return cw_mysql_check_entity(source, entity, err);
	}
	return 0;
}
