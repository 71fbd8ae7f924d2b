/*
 * This file contains the REST API's pure parsers declared in api_internal.h:
 * query strings, JSON request bodies, route matching, the bearer token and
 * the listen address. Nothing here touches the network or the hub, so the
 * unit tests and the fuzz target call it directly.
 */
#include "control/api_internal.h"

#include "control/dead_letter_select.h"
#include "core/mem.h"
#include "core/units.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOMAIN "api"

static int parse_entities(const char *text, cw_api_oplog_query_t *out, cw_err_t *err)
{
	size_t given = 0;   /* names given, duplicates included */
	const char *p = text;
	while (*p != '\0') {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		if (len > CW_ENTITY_NAME_MAX + 1)
			len = CW_ENTITY_NAME_MAX + 1;   /* long enough to fail validation */
		char name[CW_ENTITY_NAME_MAX + 2];
		memcpy(name, p, len);
		name[len] = '\0';
		if (cw_entity_name_validate(name, err) != 0) {
			cw_err_prefix(err, "query parameter \"entities\"");
			return CW_EINVAL;
		}
		if (++given > CW_API_OPLOG_MAX_ENTITIES)
			return cw_err_set(err, CW_EINVAL, DOMAIN,
			                  "query parameter \"entities\": more than %d names",
			                  CW_API_OPLOG_MAX_ENTITIES);
		bool seen = false;
		for (size_t i = 0; i < out->nentities && !seen; i++)
			seen = strcmp(out->entities[i], name) == 0;
		if (!seen) {
			out->entities = cw_xrealloc(out->entities,
			                            (out->nentities + 1) * sizeof *out->entities);
			out->entities[out->nentities++] = cw_xstrdup(name);
		}
		if (comma == NULL)
			break;
		p = comma + 1;
		if (*p == '\0')
			return cw_err_set(err, CW_EINVAL, DOMAIN,
			                  "query parameter \"entities\": empty name after ','");
	}
	return 0;
}

/* Seconds as a decimal number ("2", "0.5") into milliseconds, capped. */
static int parse_wait(const char *text, int64_t *wait_ms, cw_err_t *err)
{
	errno = 0;
	char *end = NULL;
	double seconds = text[0] == '\0' || text[0] == ' ' ? NAN : strtod(text, &end);
	if (isnan(seconds) || end == NULL || *end != '\0' || errno != 0 || seconds < 0 ||
	    strpbrk(text, "xXpPiInN") != NULL)
		return cw_err_set(err, CW_EINVAL, DOMAIN,
		                  "query parameter \"wait\": expected seconds >= 0, got \"%.64s\"", text);
	if (seconds > CW_API_OPLOG_MAX_WAIT_S)
		seconds = CW_API_OPLOG_MAX_WAIT_S;
	*wait_ms = (int64_t)(seconds * 1000.0);
	return 0;
}

int cw_api_parse_oplog_query(const char *entities, const char *after, const char *limit,
                             const char *wait, cw_api_oplog_query_t *out, cw_err_t *err)
{
	memset(out, 0, sizeof *out);
	out->limit = CW_API_OPLOG_DEFAULT_LIMIT;
	int64_t value = 0;
	int rc = 0;
	if (entities != NULL)
		rc = parse_entities(entities, out, err);
	if (rc == 0 && after != NULL) {
		rc = cw_integer_parse("query parameter \"after\"", after, 0, INT64_MAX, &value, err);
		out->after = value;
	}
	if (rc == 0 && limit != NULL) {
		rc = cw_integer_parse("query parameter \"limit\"", limit, 1, INT64_MAX, &value, err);
		out->limit = value > CW_API_OPLOG_MAX_LIMIT ? CW_API_OPLOG_MAX_LIMIT : (size_t)value;
	}
	if (rc == 0 && wait != NULL)
		rc = parse_wait(wait, &out->wait_ms, err);
	if (rc != 0)
		cw_api_oplog_query_clear(out);
	return rc;
}

void cw_api_oplog_query_clear(cw_api_oplog_query_t *query)
{
	if (query == NULL)
		return;
	for (size_t i = 0; i < query->nentities; i++)
		free(query->entities[i]);
	free(query->entities);
	memset(query, 0, sizeof *query);
}

/*
 * Says in cachewarp's words what is wrong with a body jansson refused:
 * the library's own text names its flags (JSON_ALLOW_NUL), not the problem.
 */
static int body_error(const json_error_t *jerr, size_t len, cw_err_t *err)
{
	if (len == 0)
		return cw_err_set(err, CW_EINVAL, DOMAIN, "request body is empty; expected a JSON object");
	int line = jerr->line, column = jerr->column;
	switch (json_error_code(jerr)) {
	case json_error_invalid_utf8:
		return cw_err_set(err, CW_EINVAL, DOMAIN, "request body is not valid UTF-8");
	case json_error_null_character:
	case json_error_null_byte_in_key:
		return cw_err_set(err, CW_EINVAL, DOMAIN,
		                  "request body holds a NUL character (\\u0000) in a string "
		                  "(line %d, column %d); names and values cannot contain one",
		                  line, column);
	case json_error_duplicate_key:
		return cw_err_set(err, CW_EINVAL, DOMAIN,
		                  "request body gives the same member twice (line %d, column %d)",
		                  line, column);
	case json_error_numeric_overflow:
		return cw_err_set(err, CW_EINVAL, DOMAIN,
		                  "request body holds a number too large to use (line %d, column %d)",
		                  line, column);
	case json_error_stack_overflow:
		return cw_err_set(err, CW_EINVAL, DOMAIN, "request body nests arrays or objects too deeply");
	case json_error_premature_end_of_input:
		return cw_err_set(err, CW_EINVAL, DOMAIN,
		                  "request body ends before its JSON is complete (line %d)", line);
	case json_error_end_of_input_expected:
		return cw_err_set(err, CW_EINVAL, DOMAIN,
		                  "request body goes on after its JSON object (line %d, column %d)",
		                  line, column);
	default:
		return cw_err_set(err, CW_EINVAL, DOMAIN,
		                  "request body is not valid JSON (line %d, column %d)", line, column);
	}
}

/* Loads body as a JSON object; NULL with CW_EINVAL otherwise. */
static json_t *load_object(const char *body, size_t len, cw_err_t *err)
{
	json_error_t jerr;
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		body_error(&jerr, len, err);
		return NULL;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		cw_err_set(err, CW_EINVAL, DOMAIN, "request body must be a JSON object");
		return NULL;
	}
	return root;
}

/* Copies the string member key of obj into *out (NULL when absent). 0 or CW_EINVAL. */
static int string_member(json_t *obj, const char *key, const char *where, bool required,
                         char **out, cw_err_t *err)
{
	json_t *value = json_object_get(obj, key);
	if (value == NULL && !required)
		return 0;
	if (!json_is_string(value))
		return cw_err_set(err, CW_EINVAL, DOMAIN, "%s\"%s\": %s", where, key,
		                  value == NULL ? "missing" : "must be a string");
	const char *text = json_string_value(value);
	if (strlen(text) != json_string_length(value))
		return cw_err_set(err, CW_EINVAL, DOMAIN, "%s\"%s\": contains a NUL character",
		                  where, key);
	*out = cw_xstrdup(text);
	return 0;
}

/* Rejects members of obj not in allowed (NULL-terminated). 0 or CW_EINVAL. */
static int known_members(json_t *obj, const char *const *allowed, const char *where,
                         cw_err_t *err)
{
	const char *key;
	json_t *value;
	json_object_foreach(obj, key, value) {
		bool known = false;
		for (size_t i = 0; allowed[i] != NULL && !known; i++)
			known = strcmp(key, allowed[i]) == 0;
		if (!known)
			return cw_err_set(err, CW_EINVAL, DOMAIN, "%sunknown member \"%.64s\"", where, key);
	}
	return 0;
}

static int parse_columns(json_t *columns, cw_entity_t *out, cw_err_t *err)
{
	static const char *const allowed[] = {"name", "type", "path", NULL};
	/* "auto", as in the configuration file: the same as leaving columns out. */
	if (json_is_string(columns) && strcmp(json_string_value(columns), "auto") == 0)
		return 0;
	if (!json_is_array(columns))
		return cw_err_set(err, CW_EINVAL, DOMAIN,
		                  "\"columns\": must be an array of columns or \"auto\"");
	size_t count = json_array_size(columns);
	if (count == 0)
		return 0;
	out->columns = cw_xcalloc(count, sizeof *out->columns);
	for (size_t i = 0; i < count; i++) {
		json_t *item = json_array_get(columns, i);
		char where[48];
		snprintf(where, sizeof where, "columns[%zu]: ", i);
		if (!json_is_object(item))
			return cw_err_set(err, CW_EINVAL, DOMAIN, "%smust be an object", where);
		cw_column_t *column = &out->columns[i];
		out->ncolumns++;
		char *type = NULL;
		int rc = known_members(item, allowed, where, err);
		if (rc == 0)
			rc = string_member(item, "name", where, true, &column->name, err);
		if (rc == 0)
			rc = string_member(item, "type", where, true, &type, err);
		if (rc == 0)
			rc = string_member(item, "path", where, true, &column->path, err);
		if (rc == 0 && cw_column_type_parse(type, &column->type, err) != 0) {
			cw_err_prefix(err, "columns[%zu]", i);
			rc = CW_EINVAL;
		}
		free(type);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int cw_api_parse_entity(const char *body, size_t len, cw_entity_t *out, cw_err_t *err)
{
	static const char *const allowed[] = {"name", "source", "collection", "table", "columns",
	                                      NULL};
	memset(out, 0, sizeof *out);
	out->status = CW_ENTITY_PENDING;
	out->version = 1;
	out->origin = CW_ENTITY_ORIGIN_API;
	json_t *root = load_object(body, len, err);
	if (root == NULL)
		return CW_EINVAL;
	int rc = known_members(root, allowed, "", err);
	if (rc == 0)
		rc = string_member(root, "name", "", true, &out->name, err);
	if (rc == 0)
		rc = string_member(root, "source", "", true, &out->source, err);
	if (rc == 0)
		rc = string_member(root, "collection", "", false, &out->collection, err);
	if (rc == 0)
		rc = string_member(root, "table", "", false, &out->table, err);
	json_t *columns = json_object_get(root, "columns");
	if (rc == 0 && columns != NULL)
		rc = parse_columns(columns, out, err);
	json_decref(root);
	return rc;
}

int cw_api_parse_consumer(const char *body, size_t len, bool *has_position, int64_t *position,
                          cw_err_t *err)
{
	static const char *const allowed[] = {"position", NULL};
	*has_position = false;
	*position = 0;
	size_t i = 0;
	while (i < len && (body[i] == ' ' || body[i] == '\n' || body[i] == '\r' || body[i] == '\t'))
		i++;
	if (i == len)
		return 0;
	json_t *root = load_object(body, len, err);
	if (root == NULL)
		return CW_EINVAL;
	int rc = known_members(root, allowed, "", err);
	json_t *value = json_object_get(root, "position");
	if (rc == 0 && value != NULL) {
		if (!json_is_integer(value) || json_integer_value(value) < 0)
			rc = cw_err_set(err, CW_EINVAL, DOMAIN,
			                "\"position\": must be an integer >= 0 (an oplog id)");
		else {
			*has_position = true;
			*position = json_integer_value(value);
		}
	}
	json_decref(root);
	return rc;
}

int cw_api_parse_verify(const char *body, size_t len, char **entity, char **target, bool *repair,
                        cw_err_t *err)
{
	static const char *const allowed[] = {"entity", "target", "repair", NULL};
	*entity = NULL;
	*target = NULL;
	*repair = false;
	json_t *root = load_object(body, len, err);
	if (root == NULL)
		return CW_EINVAL;
	int rc = known_members(root, allowed, "", err);
	if (rc == 0)
		rc = string_member(root, "entity", "", true, entity, err);
	if (rc == 0)
		rc = string_member(root, "target", "", true, target, err);
	json_t *value = json_object_get(root, "repair");
	if (rc == 0 && value != NULL) {
		if (!json_is_boolean(value))
			rc = cw_err_set(err, CW_EINVAL, DOMAIN, "\"repair\": must be true or false");
		else
			*repair = json_is_true(value);
	}
	if (rc == 0)
		rc = cw_entity_name_validate(*entity, err);
	if (rc == 0)
		rc = cw_identifier_validate("target name", *target, err);
	if (rc != 0) {
		free(*entity);
		free(*target);
		*entity = NULL;
		*target = NULL;
	}
	json_decref(root);
	return rc;
}

int cw_api_parse_dead_letter_replay(const char *body, size_t len, char **target, char **entity,
                                    bool *all, cw_err_t *err)
{
	static const char *const allowed[] = {"target", "entity", "all", NULL};
	static const char hint[] = "name the letters to replay: {\"target\": T}, "
	                           "{\"target\": T, \"entity\": E} or {\"all\": true}";
	*target = NULL;
	*entity = NULL;
	*all = false;
	if (len == 0)
		return cw_err_set(err, CW_EINVAL, DOMAIN, "%s", hint);
	json_t *root = load_object(body, len, err);
	if (root == NULL)
		return CW_EINVAL;
	int rc = known_members(root, allowed, "", err);
	if (rc == 0)
		rc = string_member(root, "target", "", false, target, err);
	if (rc == 0)
		rc = string_member(root, "entity", "", false, entity, err);
	json_t *value = json_object_get(root, "all");
	*all = json_is_true(value);
	if (rc == 0 && value != NULL && (!*all || *target != NULL || *entity != NULL))
		rc = cw_err_set(err, CW_EINVAL, DOMAIN, "\"all\": only true, and alone; %s", hint);
	else if (rc == 0 && value == NULL && *target == NULL)
		rc = cw_err_set(err, CW_EINVAL, DOMAIN, "%s", hint);
	cw_dead_letter_select_text_t text = {*target, *entity, NULL, NULL, NULL};
	cw_dead_letter_filter_t filter;
	if (rc == 0)
		rc = cw_dead_letter_select_parse(&text, "\"", "\"", &filter, err);
	if (rc != 0) {
		free(*target);
		free(*entity);
		*target = NULL;
		*entity = NULL;
		*all = false;
	}
	json_decref(root);
	return rc;
}

int cw_api_consumer_name_validate(const char *name, cw_err_t *err)
{
	size_t len = strlen(name);
	if (len == 0 || len > CW_API_CONSUMER_NAME_MAX)
		return cw_err_set(err, CW_EINVAL, DOMAIN,
		                  "consumer name must be 1 to %d characters long",
		                  CW_API_CONSUMER_NAME_MAX);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		          c == '_' || c == '.' || c == ':' || c == '-';
		if (!ok)
			return cw_err_set(err, CW_EINVAL, DOMAIN,
			                  "consumer name: character %zu is not one of [A-Za-z0-9_.:-]",
			                  i + 1);
	}
	return 0;
}

bool cw_api_bearer_ok(const char *header, const char *token)
{
	static const char prefix[] = "Bearer ";
	if (header == NULL || strncmp(header, prefix, sizeof prefix - 1) != 0)
		return false;
	const unsigned char *given = (const unsigned char *)header + sizeof prefix - 1;
	const unsigned char *want = (const unsigned char *)token;
	size_t given_len = strlen((const char *)given);
	size_t want_len = strlen(token);
	/* Every byte of the expected token is compared, whatever the given length. */
	unsigned diff = given_len != want_len;
	for (size_t i = 0; i < want_len; i++)
		diff |= (unsigned)(want[i] ^ (i < given_len ? given[i] : 0u));
	return diff == 0;
}

int cw_api_parse_listen(const char *listen, char *host, size_t cap, uint16_t *port,
                        cw_err_t *err)
{
	const char *colon = strrchr(listen, ':');
	const char *host_start = listen;
	size_t host_len = colon ? (size_t)(colon - listen) : 0;
	if (colon != NULL && listen[0] == '[') {
		if (host_len < 2 || listen[host_len - 1] != ']')
			colon = NULL;
		host_start = listen + 1;
		host_len -= 2;
	}
	int64_t value = 0;
	if (colon == NULL || host_len == 0 || host_len >= cap ||
	    cw_integer_parse("api.listen port", colon + 1, 0, 65535, &value, NULL) != 0)
		return cw_err_set(err, CW_EINVAL, DOMAIN,
		                  "api.listen \"%s\": expected HOST:PORT, e.g. 127.0.0.1:8080", listen);
	memcpy(host, host_start, host_len);
	host[host_len] = '\0';
	*port = (uint16_t)value;
	return 0;
}

/*
 * Matches path against pattern. The one "{name}" a pattern may hold matches
 * any non-empty text (slashes and dots included) followed by the rest of the
 * pattern, so "/v1/entities/../x" reaches the entity handler and is refused
 * there as an invalid name (400) rather than as an unknown path. The text is
 * copied into param, truncated to cap - 1 bytes (longer than any valid name).
 */
static bool pattern_match(const char *pattern, const char *path, char *param, size_t cap)
{
	const char *open = strchr(pattern, '{');
	param[0] = '\0';
	if (open == NULL)
		return strcmp(pattern, path) == 0;
	size_t prefix = (size_t)(open - pattern);
	const char *close = strchr(open, '}');
	if (close == NULL || strncmp(pattern, path, prefix) != 0)
		return false;
	const char *rest = close + 1;
	const char *value = path + prefix;
	size_t value_len = strlen(value), rest_len = strlen(rest);
	if (value_len <= rest_len || strcmp(value + value_len - rest_len, rest) != 0)
		return false;
	size_t len = value_len - rest_len;
	size_t copy = len < cap - 1 ? len : cap - 1;
	memcpy(param, value, copy);
	param[copy] = '\0';
	return true;
}

/* Length of the {name} text when route matches path; -1 when it does not, 0 without a {name}. */
static long match_length(const cw_api_route_t *route, const char *path, char *param, size_t cap)
{
	if (!pattern_match(route->pattern, path, param, cap))
		return -1;
	return (long)strlen(param);
}

const cw_api_route_t *cw_api_route_match(const char *method, const char *path, char *param,
                                         size_t cap, bool *path_known, char allow[64])
{
	size_t count = 0;
	const cw_api_route_t *routes = cw_api_routes(&count);
	if (strcmp(method, "HEAD") == 0)
		method = "GET";
	*path_known = false;
	allow[0] = '\0';
	param[0] = '\0';
	/* The most specific patterns win: those leaving the shortest {name} text. */
	char candidate[256];
	long best = -1;
	for (size_t i = 0; i < count; i++) {
		long len = match_length(&routes[i], path, candidate, sizeof candidate);
		if (len >= 0 && (best < 0 || len < best))
			best = len;
	}
	if (best < 0)
		return NULL;
	*path_known = true;
	const cw_api_route_t *found = NULL;
	for (size_t i = 0; i < count; i++) {
		if (match_length(&routes[i], path, candidate, sizeof candidate) != best)
			continue;
		size_t used = strlen(allow);
		snprintf(allow + used, 64 - used, "%s%s", used ? ", " : "", routes[i].method);
		if (found == NULL && strcmp(routes[i].method, method) == 0) {
			found = &routes[i];
			snprintf(param, cap, "%s", candidate);
		}
	}
	return found;
}
