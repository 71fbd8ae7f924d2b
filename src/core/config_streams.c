/*
 * This file contains the configuration of streams and transformations
 * (config_keys.h): the checks of their single values that the key table
 * calls, and the checks across keys that `config check` runs once every
 * value is read: unique ids, known transformation ids, one stream per
 * entity and target, retry delays in order, and no replication loop.
 */
#include "core/config_keys.h"

#include "core/db_address.h"
#include "core/entity.h"
#include "core/mem.h"
#include "core/units.h"
#include "transform/kazaam.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOMAIN "config"

/* The operations of kazaam's spec format. */
static const char *const kazaam_operations[] = {
	"shift", "concat", "coalesce", "extract", "default", "delete", "pass", "timestamp", "uuid",
};
#define NOPERATIONS (sizeof kazaam_operations / sizeof kazaam_operations[0])

static bool known_operation(const char *name)
{
	for (size_t i = 0; i < NOPERATIONS; i++)
		if (strcmp(kazaam_operations[i], name) == 0)
			return true;
	return false;
}

static int unknown_operation(size_t index, const char *name, cw_err_t *err)
{
	cw_buf_t hint = CW_BUF_INIT, quoted = CW_BUF_INIT;
	const char *guess = cw_config_closest(name, kazaam_operations, NOPERATIONS);
	if (guess != NULL) {
		cw_buf_appendf(&hint, "did you mean \"%s\"?", guess);
	} else {
		cw_buf_append_str(&hint, "use ");
		cw_config_join(&hint, kazaam_operations, NOPERATIONS);
	}
	cw_config_quote(&quoted, name);
	cw_err_set(err, CW_EINVAL, DOMAIN,
	           "invalid value: operation %zu: unknown operation %s (%s)", index,
	           cw_buf_cstr(&quoted), cw_buf_cstr(&hint));
	cw_buf_free(&hint);
	cw_buf_free(&quoted);
	return CW_EINVAL;
}

/*
 * The one check of a transformation's spec: what the kazaam engine refuses
 * when it compiles the spec, after a first look that places a JSON error by
 * line and column and suggests the operation a misspelt name meant.
 */
int cw_config_check_transformation_spec(const char *spec, cw_err_t *err)
{
	json_error_t jerr;
	json_t *root = json_loads(spec, JSON_REJECT_DUPLICATES, &jerr);
	int rc = 0;
	if (root == NULL)
		return cw_err_set(err, CW_EINVAL, DOMAIN,
		                  "invalid value: the spec is not JSON: %s (line %d, column %d of the spec)",
		                  jerr.text, jerr.line, jerr.column);
	if (!json_is_array(root))
		rc = cw_err_set(err, CW_EINVAL, DOMAIN,
		                "invalid value: the spec must be a JSON array of operations "
		                "([{\"operation\": \"shift\", \"spec\": {...}}, ...])");
	size_t index;
	json_t *step;
	json_array_foreach(root, index, step) {
		const char *name = json_string_value(json_object_get(step, "operation"));
		if (rc != 0)
			break;
		if (!json_is_object(step) || name == NULL)
			rc = cw_err_set(err, CW_EINVAL, DOMAIN,
			                "invalid value: operation %zu is not an object with an \"operation\" "
			                "string", index);
		else if (!known_operation(name))
			rc = unknown_operation(index, name, err);
	}
	json_decref(root);
	cw_err_t why;
	cw_kazaam_t *compiled = rc == 0 ? cw_kazaam_compile(spec, strlen(spec), &why) : NULL;
	if (rc == 0 && compiled == NULL)
		rc = cw_err_set(err, CW_EINVAL, DOMAIN, "invalid value: %s", why.message);
	cw_kazaam_free(compiled);
	return rc;
}

int cw_config_check_transformation_id(const char *id, cw_err_t *err)
{
	size_t len = strlen(id);
	if (len >= 1 && len <= 63 && id[0] >= 'a' && id[0] <= 'z' &&
	    strspn(id, "abcdefghijklmnopqrstuvwxyz0123456789_-") == len)
		return 0;
	cw_buf_t quoted = CW_BUF_INIT;
	cw_config_quote(&quoted, id);
	cw_err_set(err, CW_EINVAL, DOMAIN,
	           "transformation id %s is invalid: use 1 to 63 characters of a-z, 0-9, _ and -, "
	           "starting with a letter", cw_buf_cstr(&quoted));
	cw_buf_free(&quoted);
	return CW_EINVAL;
}

int cw_config_check_error_code(const char *code, cw_err_t *err)
{
	size_t len = strlen(code);
	if (len >= 1 && len < sizeof ((cw_err_t *)0)->server_code &&
	    strspn(code, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") == len)
		return 0;
	return cw_err_set(err, CW_EINVAL, DOMAIN,
	                  "an error code has 1 to 15 letters and digits (a SQLSTATE such as 23505, "
	                  "a MongoDB code such as 11000)");
}

/* ---- checks across keys ------------------------------------------------ */

static void report_unknown_transformation(const cw_config_t *config, const cw_config_reporter_t *r,
                                          const char *path, const char *id)
{
	const char **ids = cw_xcalloc(config->ntransformations + 1, sizeof *ids);
	size_t n = 0;
	for (size_t i = 0; i < config->ntransformations; i++)
		if (config->transformations[i].id != NULL)
			ids[n++] = config->transformations[i].id;
	cw_buf_t message = CW_BUF_INIT;
	cw_config_unknown_name(&message, "transformation", id, ids, n, config->ntransformations);
	r->report(r->loader, path, cw_buf_cstr(&message));
	cw_buf_free(&message);
	free(ids);
}

/* The stream's delays, each unset one taken from the global retry, in order. */
static void check_stream_delays(const cw_config_t *config, const cw_config_reporter_t *r,
                                const char *at, const cw_stream_retry_t *policy)
{
	char initial_path[128], max_path[128];
	snprintf(initial_path, sizeof initial_path, "%s.retry_policy.initial_delay", at);
	snprintf(max_path, sizeof max_path, "%s.retry_policy.max_delay", at);
	if (r->has_error(r->loader, initial_path) || r->has_error(r->loader, max_path) ||
	    r->has_error(r->loader, "retry"))
		return;
	int64_t initial = policy->initial_delay_ms ? policy->initial_delay_ms : config->retry.initial_ms;
	int64_t max = policy->max_delay_ms ? policy->max_delay_ms : config->retry.max_ms;
	if (max >= initial)
		return;
	char max_text[CW_UNITS_FORMAT_LEN], initial_text[CW_UNITS_FORMAT_LEN];
	cw_duration_format(max, max_text);
	cw_duration_format(initial, initial_text);
	if (policy->max_delay_ms != 0)
		cw_config_reportf(r, max_path, "out of range: %s is less than %s (%s)", max_text,
		                  policy->initial_delay_ms ? "initial_delay" : "retry.initial",
		                  initial_text);
	else
		cw_config_reportf(r, initial_path, "out of range: %s is more than retry.max (%s), the "
		                  "stream's max_delay when it sets none", initial_text, max_text);
}

static void check_target_streams(const cw_config_t *config, const cw_config_reporter_t *r,
                                 size_t index)
{
	const cw_target_config_t *target = &config->targets[index];
	char at[64], path[128];
	for (size_t j = 0; j < target->nstreams; j++) {
		const cw_stream_config_t *stream = &target->streams[j];
		snprintf(at, sizeof at, "targets[%zu].streams[%zu]", index, j);
		for (size_t k = 0; stream->entity != NULL && k < j; k++) {
			if (target->streams[k].entity == NULL ||
			    strcmp(target->streams[k].entity, stream->entity) != 0)
				continue;
			snprintf(path, sizeof path, "%s.entity", at);
			cw_config_reportf(r, path, "duplicate stream for entity \"%s\" "
			                  "(targets[%zu].streams[%zu] has it already)", stream->entity,
			                  index, k);
			break;
		}
		snprintf(path, sizeof path, "%s.transformation_id", at);
		if (stream->transformation_id != NULL && !r->has_error(r->loader, path) &&
		    cw_config_transformation(config, stream->transformation_id) == NULL)
			report_unknown_transformation(config, r, path, stream->transformation_id);
		check_stream_delays(config, r, at, &stream->retry_policy);
	}
}

/* ---- replication loops --------------------------------------------------- */

/* The entity's settings for target, or NULL. */
static const cw_entity_target_t *settings_for(const cw_entity_t *entity, const char *target)
{
	for (size_t i = 0; i < entity->ntargets; i++)
		if (entity->targets[i].name != NULL && strcmp(entity->targets[i].name, target) == 0)
			return &entity->targets[i];
	return NULL;
}

/*
 * Where a mongodb target writes an entity (as mongodb_target.c chooses):
 * its collection setting, else the source's collection, else its name; NULL
 * when the entity is excluded from the target.
 */
static const char *written_collection(const cw_entity_t *entity, const cw_target_config_t *target)
{
	const cw_entity_target_t *settings = settings_for(entity, target->name);
	if (settings != NULL && settings->exclude)
		return NULL;
	if (settings != NULL && settings->collection != NULL)
		return settings->collection;
	return entity->collection != NULL ? entity->collection : entity->name;
}

/* One table or collection a source captures, in the database a target writes to. */
typedef struct captured {
	const cw_target_config_t *target;
	const cw_source_config_t *source;
	const cw_entity_t *entity;       /* the entity capturing it */
	size_t entity_index;
	const char *kind;                /* "table", "collection" */
	char place[256];                 /* schema.table (63 + 63), database.collection (63 + 120) */
} captured_t;

static void report_loop(const cw_config_reporter_t *r, const char *url_path,
                        const captured_t *c, const char *writer)
{
	if (strcmp(writer, c->entity->name) == 0)
		cw_config_reportf(r, url_path, "replication loop: target \"%s\" writes entity \"%s\" "
		                  "to %s %s, the %s source \"%s\" captures it from (entities[%zu].%s)",
		                  c->target->name, writer, c->kind, c->place, c->kind, c->source->name,
		                  c->entity_index, c->kind);
	else
		cw_config_reportf(r, url_path, "replication loop: target \"%s\" writes entity \"%s\" "
		                  "to %s %s, which source \"%s\" captures for entity \"%s\" "
		                  "(entities[%zu].%s)", c->target->name, writer, c->kind, c->place,
		                  c->source->name, c->entity->name, c->entity_index, c->kind);
}

/* Whether the target receives an entity named name: a configured entity or one of its streams. */
static bool target_writes_entity(const cw_config_t *config, const cw_target_config_t *target,
                                 const char *name)
{
	return cw_config_entity(config, name) != NULL || cw_config_stream(target, name) != NULL;
}

/* A postgres target writes entity E to table <schema>.<E>: is that table c? */
static void check_postgres_loop(const cw_config_t *config, const cw_config_reporter_t *r,
                                const char *url_path, captured_t *c, const char *schema,
                                const char *table)
{
	if (strcmp(schema, c->target->schema) != 0 || !target_writes_entity(config, c->target, table))
		return;
	snprintf(c->place, sizeof c->place, "%s.%s", schema, table);
	report_loop(r, url_path, c, table);
}

/* A mongodb target writes each entity it receives to a collection: is one of them c's? */
static void check_mongodb_loop(const cw_config_t *config, const cw_config_reporter_t *r,
                               const char *url_path, captured_t *c, const char *database,
                               const char *collection)
{
	snprintf(c->place, sizeof c->place, "%s.%s", database, collection);
	for (size_t k = 0; k < config->nentities; k++) {
		const cw_entity_t *writer = &config->entities[k];
		const char *written = writer->name ? written_collection(writer, c->target) : NULL;
		if (written != NULL && strcmp(written, collection) == 0)
			report_loop(r, url_path, c, writer->name);
	}
	for (size_t j = 0; j < c->target->nstreams; j++) {
		const char *name = c->target->streams[j].entity;
		if (name != NULL && cw_config_entity(config, name) == NULL && strcmp(name, collection) == 0)
			report_loop(r, url_path, c, name);
	}
}

/* The address of a source's or target's url, its database replaced when given. */
static bool address_of(bool mongodb, const char *url, const char *database, cw_db_address_t *out)
{
	int rc = mongodb ? cw_db_address_mongodb(url, out, NULL) : cw_db_address_postgres(url, out, NULL);
	if (rc == 0 && database != NULL) {
		free(out->database);
		out->database = cw_xstrdup(database);
	}
	return rc == 0 && out->database[0] != '\0';
}

/* The entities of source (which shares a database with the target) against the target. */
static void check_source_entities(const cw_config_t *config, const cw_config_reporter_t *r,
                                  const char *url_path, captured_t *c, const char *database)
{
	char path[64], schema[CW_TABLE_PART_MAX + 1], table[CW_TABLE_PART_MAX + 1];
	for (size_t k = 0; k < config->nentities; k++) {
		const cw_entity_t *entity = &config->entities[k];
		snprintf(path, sizeof path, "entities[%zu]", k);
		if (entity->source == NULL || strcmp(entity->source, c->source->name) != 0 ||
		    r->has_error(r->loader, path))
			continue;
		c->entity = entity;
		c->entity_index = k;
		if (c->source->type == CW_SOURCE_POSTGRES && entity->table != NULL &&
		    cw_entity_table_parse(entity->table, schema, table, NULL) == 0)
			check_postgres_loop(config, r, url_path, c, schema, table);
		else if (c->source->type == CW_SOURCE_MONGODB && entity->collection != NULL)
			check_mongodb_loop(config, r, url_path, c, database, entity->collection);
	}
}

static bool item_has_error(const cw_config_reporter_t *r, const char *list, size_t index,
                           const char *key)
{
	char path[64];
	snprintf(path, sizeof path, "%s[%zu].%s", list, index, key);
	return r->has_error(r->loader, path);
}

/*
 * A postgres or mongodb target whose url reaches the database of a source
 * of the same type must not write a table or collection that a configured
 * entity of that source captures: the changes it writes would be captured
 * again (a replication loop), or an entity would overwrite its own source.
 */
static void check_target_loops(const cw_config_t *config, const cw_config_reporter_t *r, size_t i)
{
	const cw_target_config_t *target = &config->targets[i];
	bool mongodb = target->type == CW_TARGET_MONGODB;
	cw_db_address_t target_address = {0};
	if (target->name == NULL || target->url == NULL || target->type == CW_TARGET_SQLITE ||
	    item_has_error(r, "targets", i, "type") || item_has_error(r, "targets", i, "url") ||
	    item_has_error(r, "targets", i, "schema") || item_has_error(r, "targets", i, "database") ||
	    !address_of(mongodb, target->url, target->database, &target_address)) {
		cw_db_address_clear(&target_address);
		return;
	}
	char url_path[64];
	snprintf(url_path, sizeof url_path, "targets[%zu].url", i);
	for (size_t j = 0; j < config->nsources; j++) {
		const cw_source_config_t *source = &config->sources[j];
		cw_db_address_t source_address = {0};
		if (source->name != NULL && source->url != NULL &&
		    (source->type == CW_SOURCE_MONGODB) == mongodb &&
		    !item_has_error(r, "sources", j, "type") && !item_has_error(r, "sources", j, "url") &&
		    !item_has_error(r, "sources", j, "database") &&
		    address_of(mongodb, source->url, source->database, &source_address) &&
		    cw_db_address_same(&target_address, &source_address)) {
			captured_t c = {.target = target, .source = source,
			                .kind = mongodb ? "collection" : "table"};
			check_source_entities(config, r, url_path, &c, target_address.database);
		}
		cw_db_address_clear(&source_address);
	}
	cw_db_address_clear(&target_address);
}

/* The hub's own schema (hub/migrations.c). */
#define HUB_SCHEMA "cachewarp"

/*
 * The hub's schema is neither captured nor written: capturing the oplog
 * would append to it for every change it holds, and a target writing there
 * could replace the hub's own tables (an entity named "oplog").
 */
static void check_hub_schema(const cw_config_t *config, const cw_config_reporter_t *r)
{
	cw_db_address_t hub = {0}, other = {0};
	char path[64], schema[CW_TABLE_PART_MAX + 1], table[CW_TABLE_PART_MAX + 1];
	if (r->has_error(r->loader, "hub.url") || config->hub.url == NULL ||
	    !address_of(false, config->hub.url, NULL, &hub))
		goto cleanup;
	for (size_t i = 0; i < config->ntargets; i++) {
		const cw_target_config_t *target = &config->targets[i];
		bool in_hub_schema = target->type == CW_TARGET_POSTGRES && target->schema != NULL &&
		                     target->meta_schema != NULL &&
		                     (strcmp(target->schema, HUB_SCHEMA) == 0 ||
		                      strcmp(target->meta_schema, HUB_SCHEMA) == 0);
		snprintf(path, sizeof path, "targets[%zu].%s", i,
		         in_hub_schema && strcmp(target->schema, HUB_SCHEMA) == 0 ? "schema" : "meta_schema");
		if (in_hub_schema && target->url != NULL && !item_has_error(r, "targets", i, "url") &&
		    address_of(false, target->url, NULL, &other) && cw_db_address_same(&hub, &other))
			cw_config_reportf(r, path, "target \"%s\" would write into schema %s of the hub's "
			                  "database, the hub's own tables: use another schema",
			                  target->name, HUB_SCHEMA);
		cw_db_address_clear(&other);
	}
	for (size_t k = 0; k < config->nentities; k++) {
		const cw_entity_t *entity = &config->entities[k];
		const cw_source_config_t *source = cw_config_source(config, entity->source);
		snprintf(path, sizeof path, "entities[%zu].table", k);
		bool captures_hub_schema =
			source != NULL && source->type == CW_SOURCE_POSTGRES && source->url != NULL &&
			entity->table != NULL && !r->has_error(r->loader, path) &&
			cw_entity_table_parse(entity->table, schema, table, NULL) == 0 &&
			strcmp(schema, HUB_SCHEMA) == 0;
		if (captures_hub_schema && address_of(false, source->url, NULL, &other) &&
		    cw_db_address_same(&hub, &other))
			cw_config_reportf(r, path, "replication loop: entity \"%s\" captures %s.%s, a "
			                  "table of the hub itself (source \"%s\" is the hub's database)",
			                  entity->name, HUB_SCHEMA, table, source->name);
		cw_db_address_clear(&other);
	}
cleanup:
	cw_db_address_clear(&hub);
}

static void check_loops(const cw_config_t *config, const cw_config_reporter_t *r)
{
	for (size_t i = 0; i < config->ntargets; i++)
		check_target_loops(config, r, i);
	check_hub_schema(config, r);
}

void cw_config_check_streams(const cw_config_t *config, const cw_config_reporter_t *reporter)
{
	cw_config_check_unique(reporter, config, "transformations", "id", "transformation id");
	for (size_t i = 0; i < config->ntargets; i++)
		check_target_streams(config, reporter, i);
	check_loops(config, reporter);
}
