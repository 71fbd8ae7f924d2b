/*
 * cw-mongo-exec: runs MongoDB writes and counts from a script, for shell
 * tests and the demo (no MongoDB shell exists on this machine).
 *
 *   cw-mongo-exec URL DATABASE < commands
 *
 * One command per line, each a JSON object naming the operation and the
 * collection:
 *   {"insert": "products", "docs": [{...}, ...]}
 *   {"insert": "products", "docs": [...], "unchecked": true}   field names unchecked ("$x")
 *   {"update": "products", "filter": {...}, "change": {"$set": {...}}, "multi": true}
 *   {"delete": "products", "filter": {...}, "multi": true}
 *   {"count": "products", "filter": {...}}          prints the count
 *   {"drop": "products"}
 *   {"dump": "products", "fields": ["title", "n"]}  prints "_id|title|n" per document, by _id
 *   {"dump": "products", "canonical": true, "without": ["_cachewarp"]}
 *                                                   prints each document, by _id, as canonical
 *                                                   extended JSON (every BSON type and the field
 *                                                   order show) without the top-level fields named
 *   {"collections": true}                           prints the database's collection names, sorted
 * Extended JSON is accepted ({"$oid": ...}). Exits 1 at the first failure.
 */
#include <mongoc/mongoc.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bson_t *member_doc(const bson_t *cmd, const char *key, bson_t *storage)
{
	bson_iter_t it;
	if (!bson_iter_init_find(&it, cmd, key) || !BSON_ITER_HOLDS_DOCUMENT(&it))
		return NULL;
	uint32_t len = 0;
	const uint8_t *data = NULL;
	bson_iter_document(&it, &len, &data);
	return bson_init_static(storage, data, len) ? storage : NULL;
}

static bool member_bool(const bson_t *cmd, const char *key)
{
	bson_iter_t it;
	return bson_iter_init_find(&it, cmd, key) && bson_iter_as_bool(&it);
}

static const char *member_string(const bson_t *cmd, const char *key)
{
	bson_iter_t it;
	if (!bson_iter_init_find(&it, cmd, key) || !BSON_ITER_HOLDS_UTF8(&it))
		return NULL;
	return bson_iter_utf8(&it, NULL);
}

static bool run_insert(mongoc_collection_t *coll, const bson_t *cmd, bson_error_t *error)
{
	bson_iter_t it, child;
	if (!bson_iter_init_find(&it, cmd, "docs") || !BSON_ITER_HOLDS_ARRAY(&it) ||
	    !bson_iter_recurse(&it, &child)) {
		bson_set_error(error, 0, 0, "insert needs \"docs\": [...]");
		return false;
	}
	mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts(coll, NULL);
	bson_t *opts = member_bool(cmd, "unchecked") ? BCON_NEW("validate", BCON_BOOL(false)) : bson_new();
	size_t n = 0;
	while (bson_iter_next(&child)) {
		uint32_t len = 0;
		const uint8_t *data = NULL;
		bson_t doc;
		if (!BSON_ITER_HOLDS_DOCUMENT(&child))
			continue;
		bson_iter_document(&child, &len, &data);
		bson_init_static(&doc, data, len);
		if (!mongoc_bulk_operation_insert_with_opts(bulk, &doc, opts, error)) {
			mongoc_bulk_operation_destroy(bulk);
			bson_destroy(opts);
			return false;
		}
		n++;
	}
	bool ok = n == 0 || mongoc_bulk_operation_execute(bulk, NULL, error) != 0;
	mongoc_bulk_operation_destroy(bulk);
	bson_destroy(opts);
	return ok;
}

/* Prints a value as text: strings bare, numbers as numbers, anything else as relaxed JSON. */
static void print_value(const bson_iter_t *it)
{
	if (BSON_ITER_HOLDS_UTF8(it)) {
		fputs(bson_iter_utf8(it, NULL), stdout);
	} else if (BSON_ITER_HOLDS_INT32(it) || BSON_ITER_HOLDS_INT64(it)) {
		printf("%lld", (long long)bson_iter_as_int64(it));
	} else if (BSON_ITER_HOLDS_DOUBLE(it)) {
		printf("%.17g", bson_iter_double(it));
	} else {
		bson_t wrap = BSON_INITIALIZER;
		bson_append_iter(&wrap, "v", 1, it);
		char *json = bson_as_relaxed_extended_json(&wrap, NULL);
		fputs(json, stdout);
		bson_free(json);
		bson_destroy(&wrap);
	}
}

/* Whether key is one of the strings of cmd's array "without". */
static bool left_out(const bson_t *cmd, const char *key)
{
	bson_iter_t it, item;
	if (!bson_iter_init_find(&it, cmd, "without") || !BSON_ITER_HOLDS_ARRAY(&it) ||
	    !bson_iter_recurse(&it, &item))
		return false;
	while (bson_iter_next(&item))
		if (BSON_ITER_HOLDS_UTF8(&item) && strcmp(bson_iter_utf8(&item, NULL), key) == 0)
			return true;
	return false;
}

static void print_canonical(const bson_t *cmd, const bson_t *doc)
{
	bson_t kept = BSON_INITIALIZER;
	bson_iter_t it;
	if (bson_iter_init(&it, doc))
		while (bson_iter_next(&it))
			if (!left_out(cmd, bson_iter_key(&it)))
				bson_append_iter(&kept, bson_iter_key(&it), -1, &it);
	char *json = bson_as_canonical_extended_json(&kept, NULL);
	printf("%s\n", json);
	bson_free(json);
	bson_destroy(&kept);
}

static bool run_dump(mongoc_collection_t *coll, const bson_t *cmd, bson_error_t *error)
{
	bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort;
	BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
	BSON_APPEND_INT32(&sort, "_id", 1);
	bson_append_document_end(&opts, &sort);
	mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(coll, &filter, &opts, NULL);
	const bson_t *doc;
	while (mongoc_cursor_next(cursor, &doc)) {
		bson_iter_t it, fields, field;
		if (member_bool(cmd, "canonical")) {
			print_canonical(cmd, doc);
			continue;
		}
		if (bson_iter_init_find(&it, doc, "_id"))
			print_value(&it);
		if (bson_iter_init_find(&fields, cmd, "fields") && BSON_ITER_HOLDS_ARRAY(&fields) &&
		    bson_iter_recurse(&fields, &field)) {
			while (bson_iter_next(&field)) {
				putchar('|');
				if (BSON_ITER_HOLDS_UTF8(&field) &&
				    bson_iter_init_find(&it, doc, bson_iter_utf8(&field, NULL)))
					print_value(&it);
				else
					putchar('~');
			}
		}
		putchar('\n');
	}
	bool ok = !mongoc_cursor_error(cursor, error);
	mongoc_cursor_destroy(cursor);
	bson_destroy(&filter);
	bson_destroy(&opts);
	return ok;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool run_collections(mongoc_database_t *db, bson_error_t *error)
{
	char **names = mongoc_database_get_collection_names_with_opts(db, NULL, error);
	if (names == NULL)
		return false;
	size_t n = 0;
	while (names[n] != NULL)
		n++;
	qsort(names, n, sizeof *names, name_cmp);
	for (size_t i = 0; i < n; i++)
		printf("%s\n", names[i]);
	bson_strfreev(names);
	return true;
}

static bool run_command(mongoc_database_t *db, const bson_t *cmd, bson_error_t *error)
{
	if (member_bool(cmd, "collections"))
		return run_collections(db, error);
	const char *name = NULL;
	const char *ops[] = {"insert", "update", "delete", "count", "drop", "dump"};
	size_t op = 0;
	for (; op < 6 && name == NULL; op++)
		name = member_string(cmd, ops[op]);
	if (name == NULL) {
		bson_set_error(error, 0, 0, "no operation (insert, update, delete, count, drop, dump)");
		return false;
	}
	op--;
	mongoc_collection_t *coll = mongoc_database_get_collection(db, name);
	bson_t filter_storage, update_storage, empty = BSON_INITIALIZER;
	bson_t *filter = member_doc(cmd, "filter", &filter_storage);
	if (filter == NULL)
		filter = &empty;
	bool ok = false;
	switch (op) {
	case 0:
		ok = run_insert(coll, cmd, error);
		break;
	case 1: {
		bson_t *update = member_doc(cmd, "change", &update_storage);
		if (update == NULL)
			bson_set_error(error, 0, 0, "update needs \"change\": {...}");
		else if (member_bool(cmd, "multi"))
			ok = mongoc_collection_update_many(coll, filter, update, NULL, NULL, error);
		else
			ok = mongoc_collection_update_one(coll, filter, update, NULL, NULL, error);
		break;
	}
	case 2:
		ok = member_bool(cmd, "multi")
			? mongoc_collection_delete_many(coll, filter, NULL, NULL, error)
			: mongoc_collection_delete_one(coll, filter, NULL, NULL, error);
		break;
	case 3: {
		int64_t n = mongoc_collection_count_documents(coll, filter, NULL, NULL, NULL, error);
		ok = n >= 0;
		if (ok)
			printf("%lld\n", (long long)n);
		break;
	}
	case 4:
		ok = mongoc_collection_drop(coll, error) || strstr(error->message, "not found") != NULL;
		break;
	default:
		ok = run_dump(coll, cmd, error);
		break;
	}
	bson_destroy(&empty);
	mongoc_collection_destroy(coll);
	return ok;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: cw-mongo-exec URL DATABASE < commands\n");
		return 2;
	}
	mongoc_init();
	bson_error_t error;
	mongoc_uri_t *uri = mongoc_uri_new_with_error(argv[1], &error);
	if (uri == NULL) {
		fprintf(stderr, "cw-mongo-exec: bad URL: %s\n", error.message);
		return 2;
	}
	mongoc_client_t *client = mongoc_client_new_from_uri(uri);
	mongoc_database_t *db = mongoc_client_get_database(client, argv[2]);
	int rc = 0;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	long lineno = 0;
	while (rc == 0 && (len = getline(&line, &cap, stdin)) >= 0) {
		lineno++;
		if (len <= 1)
			continue;
		bson_t cmd;
		if (!bson_init_from_json(&cmd, line, len, &error)) {
			fprintf(stderr, "cw-mongo-exec: line %ld: %s\n", lineno, error.message);
			rc = 1;
			break;
		}
		if (!run_command(db, &cmd, &error)) {
			fprintf(stderr, "cw-mongo-exec: line %ld: %s\n", lineno, error.message);
			rc = 1;
		}
		bson_destroy(&cmd);
	}
	free(line);
	mongoc_database_destroy(db);
	mongoc_client_destroy(client);
	mongoc_uri_destroy(uri);
	mongoc_cleanup();
	return rc;
}
