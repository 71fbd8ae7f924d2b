/*
 * This file contains the checks of a loaded configuration that relate keys to
 * each other (config_loader.h): urls that suit their database, unique names,
 * entities against their sources and targets, and the checks of config_auth.c
 * and config_streams.c, run through the loader's error list.
 */
#include "core/config_keys.h"
#include "core/config_loader.h"
#include "core/mem.h"
#include "core/units.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool starts_with(const char *text, const char *prefix)
{
	return strncmp(text, prefix, strlen(prefix)) == 0;
}

/* The url (never quoted: it holds a password) must suit the database it is for. */
static void check_url(cw_config_loader_t *ld, const char *path, const char *url, bool mongodb)
{
	if (url == NULL)
		return;
	if (mongodb && !starts_with(url, "mongodb://") && !starts_with(url, "mongodb+srv://"))
		cw_config_report(ld, path, "invalid value: a mongodb url starts with mongodb:// or "
		                 "mongodb+srv://");
	if (!mongodb && !starts_with(url, "postgresql://") && !starts_with(url, "postgres://") &&
	    strchr(url, '=') == NULL)
		cw_config_report(ld, path,
		                 "invalid value: a postgres url starts with postgresql:// or "
		                 "postgres://, or is a conninfo string (host=... dbname=...)");
}

static void reporter_report(void *loader, const char *path, const char *message)
{
	cw_config_report(loader, path, "%s", message);
}

static bool reporter_has_error(void *loader, const char *path)
{
	return cw_config_has_error(loader, path);
}

/* Reports every item of list whose name an earlier item has already. */
static void check_unique_names(cw_config_loader_t *ld, const char *list_path, const char *what)
{
	char noun[48];
	snprintf(noun, sizeof noun, "%s name", what);
	cw_config_reporter_t reporter = {ld, reporter_report, reporter_has_error};
	cw_config_check_unique(&reporter, ld->config, list_path, "name", noun);
}

/*
 * A target's relative dir, made absolute against the directory of the
 * configuration file (as given when that directory cannot be resolved).
 */
char *cw_config_resolve_path(const char *config_name, const char *dir)
{
	if (dir[0] == '/')
		return cw_xstrdup(dir);
	const char *slash = strrchr(config_name, '/');
	char *parent = slash ? cw_xstrndup(config_name, slash == config_name ? 1 : (size_t)(slash - config_name))
	                     : cw_xstrdup(".");
	char *absolute = realpath(parent, NULL);
	const char *base = absolute ? absolute : parent;
	while (starts_with(dir, "./"))
		dir += 2 + strspn(dir + 2, "/");
	char *resolved;
	if (dir[0] == '\0' || strcmp(dir, ".") == 0)
		resolved = cw_xstrdup(base);
	else
		resolved = cw_xasprintf("%s%s%s", base, base[strlen(base) - 1] == '/' ? "" : "/", dir);
	free(absolute);
	free(parent);
	return resolved;
}

static void check_sources_and_targets(cw_config_loader_t *ld)
{
	cw_config_t *config = ld->config;
	char path[64];
	for (size_t i = 0; i < config->nsources; i++) {
		cw_source_config_t *source = &config->sources[i];
		snprintf(path, sizeof path, "sources[%zu].type", i);
		if (cw_config_has_error(ld, path) || source->name == NULL)
			continue;   /* what the source is for is unknown */
		snprintf(path, sizeof path, "sources[%zu].url", i);
		if (source->type == CW_SOURCE_MYSQL) {
			if (source->url != NULL && !starts_with(source->url, "mysql://"))
				cw_config_report(ld, path,
				                 "invalid value: a mysql url starts with mysql://");
			continue;
		}
		check_url(ld, path, source->url, source->type == CW_SOURCE_MONGODB);
		if (source->type != CW_SOURCE_POSTGRES || source->slot != NULL)
			continue;
		source->slot = cw_xasprintf("cachewarp_%s", source->name);
		snprintf(path, sizeof path, "sources[%zu].slot", i);
		if (strlen(source->slot) > CW_ENTITY_NAME_MAX)
			cw_config_report(ld, path,
			                 "the default slot name \"%s\" is longer than %d characters: "
			                 "set slot",
			                 source->slot, CW_ENTITY_NAME_MAX);
	}
	for (size_t i = 0; i < config->ntargets; i++) {
		cw_target_config_t *target = &config->targets[i];
		snprintf(path, sizeof path, "targets[%zu].type", i);
		bool type_known = !cw_config_has_error(ld, path);
		snprintf(path, sizeof path, "targets[%zu].url", i);
		if (type_known)
			check_url(ld, path, target->url, target->type == CW_TARGET_MONGODB);
		snprintf(path, sizeof path, "targets[%zu].exclude", i);
		if (target->entities != NULL && target->exclude != NULL)
			cw_config_report(ld, path,
			                 "set either entities (the ones the target receives) or "
			                 "exclude (the ones it leaves out), not both");
		if (target->dir != NULL) {
			char *resolved = cw_config_resolve_path(ld->name, target->dir);
			free(target->dir);
			target->dir = resolved;
		}
	}
	check_url(ld, "hub.url", config->hub.url, false);
	check_unique_names(ld, "sources", "source");
	check_unique_names(ld, "targets", "target");
}

static void report_unknown_source(cw_config_loader_t *ld, const char *path, const char *name)
{
	const cw_config_t *config = ld->config;
	const char **names = cw_xcalloc(config->nsources + 1, sizeof *names);
	size_t n = 0;
	for (size_t i = 0; i < config->nsources; i++)
		if (config->sources[i].name != NULL)   /* a source whose name was wrong or missing */
			names[n++] = config->sources[i].name;
	cw_buf_t message = CW_BUF_INIT;
	cw_config_unknown_name(&message, "source", name, names, n, config->nsources);
	cw_config_report(ld, path, "%s", cw_buf_cstr(&message));
	cw_buf_free(&message);
	free(names);
}

/* Batch mode: a postgres source, and one of schedule and polling_interval. */
static void check_entity_batch(cw_config_loader_t *ld, const char *at, const cw_entity_t *entity,
                               const cw_source_config_t *source)
{
	char path[128];
	if (entity->mode != CW_ENTITY_MODE_BATCH)
		return;
	if (source->type != CW_SOURCE_POSTGRES && source->type != CW_SOURCE_MYSQL) {
		snprintf(path, sizeof path, "%s.mode", at);
		cw_config_report(ld, path,
		                 "batch mode needs a postgres or mysql source (source \"%s\" is "
		                 "%s)",
		                 source->name, cw_source_type_name(source->type));
	}
	if (entity->batch.schedule != NULL && entity->batch.polling_interval_ms > 0) {
		snprintf(path, sizeof path, "%s.polling_interval", at);
		cw_config_report(ld, path, "set schedule or polling_interval, not both");
	}
}

/*
 * Checks an entity against its source and as a whole. Runs even when other
 * keys are wrong, so one run reports every error; it only skips what depends
 * on a value already reported (the source's name or type, the entity's keys).
 */
static void check_entity(cw_config_loader_t *ld, size_t index, cw_entity_t *entity)
{
	char at[48], path[128], key[64];
	cw_err_t why;
	entity->status = CW_ENTITY_PENDING;
	entity->version = 1;
	snprintf(at, sizeof at, "entities[%zu]", index);
	snprintf(path, sizeof path, "%s.source", at);
	if (entity->source == NULL || cw_config_has_error(ld, path))
		return;
	const cw_source_config_t *source = cw_config_source(ld->config, entity->source);
	if (source == NULL) {
		report_unknown_source(ld, path, entity->source);
		return;
	}
	snprintf(path, sizeof path, "sources[%zu].type", (size_t)(source - ld->config->sources));
	if (cw_config_has_error(ld, path))
		return;
	bool mongodb = source->type == CW_SOURCE_MONGODB;
	const char *wanted = mongodb ? "collection" : "table";
	const char *other = mongodb ? "table" : "collection";
	if ((mongodb ? entity->table : entity->collection) != NULL) {
		snprintf(path, sizeof path, "%s.%s", at, other);
		cw_config_report(ld, path, "source \"%s\" is a %s source: use %s, not %s",
		                 source->name, cw_source_type_name(source->type), wanted, other);
	} else if ((mongodb ? entity->collection : entity->table) == NULL) {
		snprintf(path, sizeof path, "%s.%s", at, wanted);
		cw_config_report(ld, path, "missing required value (source \"%s\" is a %s source)",
		                 source->name, cw_source_type_name(source->type));
	} else if (!cw_config_has_error(ld, at) &&
	           cw_entity_validate_key(entity, key, sizeof key, &why) != 0) {
		snprintf(path, sizeof path, "%s%s%s", at, key[0] ? "." : "", key);
		cw_config_report(ld, path, "%s", why.message);
	}
	check_entity_batch(ld, at, entity, source);
}

/* An entity's per-target settings name configured targets of a type they apply to. */
static void check_entity_targets(cw_config_loader_t *ld, size_t index, const cw_entity_t *entity)
{
	char path[128];
	for (size_t j = 0; j < entity->ntargets; j++) {
		const cw_entity_target_t *et = &entity->targets[j];
		snprintf(path, sizeof path, "entities[%zu].targets[%zu].name", index, j);
		if (et->name == NULL || cw_config_has_error(ld, path))
			continue;
		const cw_target_config_t *target = cw_config_target(ld->config, et->name);
		if (target == NULL) {
			cw_config_report(ld, path, "unknown target \"%s\"", et->name);
			continue;
		}
		snprintf(path, sizeof path, "entities[%zu].targets[%zu].write_batch_size", index, j);
		if (et->write_batch_size != 0 && target->type != CW_TARGET_POSTGRES)
			cw_config_report(ld, path,
			                 "only applies to postgres targets (target \"%s\" is %s)",
			                 et->name, cw_target_type_name(target->type));
	}
}

/* The checks that relate keys to each other; run once every value is valid. */
void cw_config_check_relations(cw_config_loader_t *ld)
{
	cw_config_t *config = ld->config;
	check_sources_and_targets(ld);
	cw_config_reporter_t reporter = {ld, reporter_report, reporter_has_error};
	cw_config_check_auth(config, ld->name, &reporter);
	for (size_t i = 0; i < config->nentities; i++) {
		check_entity(ld, i, &config->entities[i]);
		check_entity_targets(ld, i, &config->entities[i]);
	}
	check_unique_names(ld, "entities", "entity");
	if (!cw_config_has_error(ld, "retry.max") && !cw_config_has_error(ld, "retry.initial") &&
	    config->retry.max_ms < config->retry.initial_ms) {
		char max[CW_UNITS_FORMAT_LEN], initial[CW_UNITS_FORMAT_LEN];
		cw_duration_format(config->retry.max_ms, max);
		cw_duration_format(config->retry.initial_ms, initial);
		cw_config_report(ld, "retry.max",
		                 "out of range: %s is less than retry.initial (%s)", max, initial);
	}
	cw_config_check_streams(config, &reporter);
}
