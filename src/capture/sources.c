/* This file contains the registry of source types (source.h): one line per type. */
#include "capture/source.h"

#include "capture/mongo.h"

#include <stddef.h>
#include <string.h>

extern const cw_source_ops_t cw_postgres_source_ops;
extern const cw_source_ops_t cw_postgres_batch_ops;
extern const cw_source_ops_t cw_mysql_source_ops;
extern const cw_source_ops_t cw_mysql_batch_ops;
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

const cw_source_ops_t *cw_source_batch_ops_for(cw_source_type_t type)
{
	switch (type) {
	case CW_SOURCE_POSTGRES: return &cw_postgres_batch_ops;
	case CW_SOURCE_MYSQL: return &cw_mysql_batch_ops;
	case CW_SOURCE_MONGODB: return NULL;
	}
	return NULL;
}

/* How many configured entities of source are in batch mode, and in all. */
static void count_modes(const cw_config_t *config, const char *source, size_t *batch,
                        size_t *all)
{
	*batch = *all = 0;
	for (size_t i = 0; i < config->nentities; i++) {
		const cw_entity_t *entity = &config->entities[i];
		if (entity->source == NULL || strcmp(entity->source, source) != 0)
			continue;
		(*all)++;
		*batch += entity->mode == CW_ENTITY_MODE_BATCH;
	}
}

bool cw_source_has_batch(const cw_config_t *config, const char *source)
{
	size_t batch, all;
	count_modes(config, source, &batch, &all);
	return batch > 0;
}

bool cw_source_needs_stream(const cw_config_t *config, const char *source)
{
	size_t batch, all;
	count_modes(config, source, &batch, &all);
	return batch == 0 || batch < all;
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
