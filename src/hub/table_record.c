/* This file contains a PostgreSQL source's record of an entity's table (table_record.h). */
#include "hub/table_record.h"

#include "core/mem.h"
#include "hub/metadata.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

char *cw_table_record_key(const char *entity)
{
	return cw_xasprintf("table_types:%s", entity);
}

static void strings_free(char **strings, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(strings[i]);
	free(strings);
}

void cw_table_record_clear(cw_table_record_t *rec)
{
	strings_free(rec->names, rec->n);
	strings_free(rec->types, rec->n);
	strings_free(rec->key, rec->nkey);
	memset(rec, 0, sizeof *rec);
}

void cw_table_record_parse(cw_table_record_t *rec, const char *json)
{
	cw_table_record_clear(rec);
	json_t *root = json != NULL ? json_loads(json, 0, NULL) : NULL;
	json_t *cols = json_object_get(root, "columns"), *key = json_object_get(root, "key");
	size_t n = json_is_array(cols) ? json_array_size(cols) : 0;
	rec->names = cw_xcalloc(n + 1, sizeof *rec->names);
	rec->types = cw_xcalloc(n + 1, sizeof *rec->types);
	for (size_t i = 0; i < n; i++) {
		json_t *c = json_array_get(cols, i);
		if (!json_is_string(json_array_get(c, 0)) || !json_is_string(json_array_get(c, 1)))
			continue;
		rec->names[rec->n] = cw_xstrdup(json_string_value(json_array_get(c, 0)));
		rec->types[rec->n++] = cw_xstrdup(json_string_value(json_array_get(c, 1)));
	}
	n = json_is_array(key) ? json_array_size(key) : 0;
	rec->key = cw_xcalloc(n + 1, sizeof *rec->key);
	for (size_t i = 0; i < n; i++)
		if (json_is_string(json_array_get(key, i)))
			rec->key[rec->nkey++] = cw_xstrdup(json_string_value(json_array_get(key, i)));
	json_decref(root);
}

void cw_table_record_read(cw_table_record_t *rec, cw_hub_t *hub, const char *entity)
{
	char *key = cw_table_record_key(entity), *json = NULL;
	cw_table_record_parse(rec, cw_metadata_get(hub, key, &json, NULL) == 0 ? json : NULL);
	free(json);
	free(key);
}

const char *cw_table_record_type(const cw_table_record_t *rec, const char *name, size_t len)
{
	for (size_t i = 0; i < rec->n; i++)
		if (strlen(rec->names[i]) == len && memcmp(rec->names[i], name, len) == 0)
			return rec->types[i];
	return NULL;
}
