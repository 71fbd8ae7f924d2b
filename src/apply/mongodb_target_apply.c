/*
 * This file contains the MongoDB target's batch writer
 * (mongodb_target_internal.h). Each write becomes one operation:
 *
 *   upsert, whole document  replaceOne(upsert) on {_id, guard}
 *   upsert, absent keys     updateOne({$set}, upsert) on {_id, guard}
 *   delete                  deleteOne on {_id, guard}
 *   sweep                   deleteMany on {_cachewarp.version < v}
 *
 * where guard is {"_cachewarp.oplog_id": {$not: {$gte: <this change's id>}}}:
 * a document written by a later change does not match, the upsert then
 * tries to insert its _id and fails with a duplicate key, which says "a
 * newer version is there" and is skipped. A document without _cachewarp (a
 * write made directly in the target) matches: the source wins. The guard is
 * needed only for changes up to what a batch meant to write before the
 * entity was opened (mdb_entity_t.guard_until: the replay after a crash);
 * later changes filter on _id alone, which every server answers from its
 * _id index.
 *
 * The writes between two sweeps touch distinct documents (the coalescer
 * keeps one write per document per segment), so each such segment is one
 * bulk write sent unordered: a document the server refuses does not hold up
 * the others, and every refusal comes back in the one reply. Sweeps run
 * between the segments, in the batch's order.
 */
#include "apply/mongodb_target_internal.h"

#include "apply/mongodb_doc.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* MongoDB's DuplicateKey. */
#define DUPLICATE_KEY 11000
/* The server's largest document (maxBsonObjectSize). */
#define DOCUMENT_MAX (16 * 1024 * 1024)
/* Most bytes of a refused document's text kept in its quarantine record. */
#define QUARANTINE_TEXT_MAX (1024 * 1024)

bool mdb_error_is_permanent(uint32_t code)
{
	static const uint32_t codes[] = {
		0,      /* a write error without a code: the document's */
		2,      /* BadValue */
		9,      /* FailedToParse */
		14,     /* TypeMismatch */
		15,     /* Overflow */
		17,     /* unknown modifier */
		28,     /* PathNotViable */
		40,     /* ConflictingUpdateOperators */
		52,     /* DollarPrefixedFieldName */
		53,     /* InvalidIdField */
		55,     /* InvalidDBRef */
		56,     /* EmptyFieldName */
		57,     /* DottedFieldName */
		66,     /* ImmutableField */
		121,    /* DocumentValidationFailure */
		10334,  /* BSONObjectTooLarge */
		17280,  /* KeyTooLong */
		17419,  /* document too large after an update */
	};
	for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
		if (codes[i] == code)
			return true;
	return false;
}

unsigned mdb_error_labels(const bson_t *reply)
{
	unsigned labels = 0;
	if (reply != NULL && mongoc_error_has_label(reply, "TransientTransactionError"))
		labels |= MDB_LABEL_TRANSIENT;
	if (reply != NULL && mongoc_error_has_label(reply, "UnknownTransactionCommitResult"))
		labels |= MDB_LABEL_UNKNOWN_COMMIT;
	return labels;
}

mdb_txn_next_t mdb_txn_next(bool failed, bool in_commit, unsigned labels, bool write_errors,
                            int attempt)
{
	if (!failed)
		return write_errors ? MDB_TXN_WITHOUT : MDB_TXN_DONE;
	if (attempt >= MDB_TXN_ATTEMPTS)
		return MDB_TXN_FAIL;
	if (in_commit && (labels & MDB_LABEL_UNKNOWN_COMMIT))
		return MDB_TXN_RETRY_COMMIT;
	if (labels & MDB_LABEL_TRANSIENT)
		return MDB_TXN_RETRY;
	return MDB_TXN_FAIL;
}

/* ---- documents ------------------------------------------------------------------ */

/* One write made into its BSON: the filter's _id, the document or $set fields. */
typedef struct built {
	bson_t id;               /* {"_id": <value>} */
	bson_t doc;              /* the whole document, or the fields to $set */
	bool partial;            /* absent keys: updateOne($set) */
	bool loose_id;           /* document layout delete: _id from doc_id text, several candidates */
} built_t;

static void built_init(built_t *b)
{
	bson_init(&b->id);
	bson_init(&b->doc);
	b->partial = false;
	b->loose_id = false;
}

static void built_free(built_t *b)
{
	bson_destroy(&b->id);
	bson_destroy(&b->doc);
}

static void append_meta(bson_t *doc, const cw_write_t *w)
{
	bson_t meta;
	bson_append_document_begin(doc, MDB_META_FIELD, -1, &meta);
	BSON_APPEND_INT64(&meta, "oplog_id", w->oplog_id);
	BSON_APPEND_INT64(&meta, "version", w->version);
	BSON_APPEND_UTF8(&meta, "doc_id", w->doc_id);
	bson_append_document_end(doc, &meta);
}

static bool is_key_field(const mdb_entity_t *ent, const char *key, size_t len)
{
	if (ent->src.nkey == 0)
		return cw_layout_key_is_id(key, len);
	for (size_t k = 0; k < ent->src.nkey; k++)
		if (strlen(ent->src.key[k]) == len && memcmp(ent->src.key[k], key, len) == 0)
			return true;
	return false;
}

/* A key value from the doc_id text: a JSON number stays a number, anything else a string. */
static int append_key_text(bson_t *out, const char *key, size_t key_len, const char *pg_type,
                           const char *text, size_t len, cw_err_t *err)
{
	cw_buf_t json = CW_BUF_INIT;
	cw_buf_append_str(&json, "{\"v\":");
	bool number = len > 0 && len < 40 && strspn(text, "-0123456789") == len &&
	              !(len > 1 && text[0] == '0') && strcmp(text, "-") != 0;
	if (number) {
		cw_buf_append(&json, text, len);
	} else {
		cw_json_t w;
		cw_json_init(&w, &json, CW_JSON_DEFAULT);
		cw_json_string_len(&w, text, len, NULL);
	}
	cw_buf_append_char(&json, '}');
	cw_json_fields_t fields;
	cw_json_fields_init(&fields);
	int rc = cw_json_fields_parse(&fields, cw_buf_cstr(&json), err);
	if (rc == 0)
		rc = cw_mdoc_append_pg(out, key, key_len, number ? pg_type : NULL, &fields.items[0], err);
	cw_json_fields_clear(&fields);
	cw_buf_free(&json);
	return rc;
}

/* _id from the doc_id text (typed and dynamic layouts): the key's value, or its columns' values. */
static int id_from_doc_id(const mdb_entity_t *ent, const char *doc_id, bson_t *id, cw_err_t *err)
{
	if (ent->layout != CW_LAYOUT_DYNAMIC || ent->src.nkey <= 1) {
		const char *type = ent->src.nkey == 1 ? cw_table_record_type(&ent->src, ent->src.key[0],
		                                                      strlen(ent->src.key[0])) : NULL;
		if (ent->layout != CW_LAYOUT_DYNAMIC)
			return BSON_APPEND_UTF8(id, "_id", doc_id) ? 0
			       : cw_err_set(err, CW_EINVAL, MDB_COMPONENT, "doc_id cannot be an _id");
		return append_key_text(id, "_id", 3, type, doc_id, strlen(doc_id), err);
	}
	/* a composite key: doc_id is the JSON array of the key's values, in key order */
	cw_json_fields_t values;
	cw_json_fields_init(&values);
	int rc = cw_json_fields_parse_nested(&values, doc_id, err);
	if (rc == 0 && values.len != ent->src.nkey)
		rc = cw_err_set(err, CW_EINVAL, MDB_COMPONENT, "doc_id %s does not hold the %zu values "
		                "of the key", doc_id, ent->src.nkey);
	bson_t child;
	if (rc == 0)
		bson_append_document_begin(id, "_id", 3, &child);
	for (size_t k = 0; rc == 0 && k < ent->src.nkey; k++) {
		const char *name = ent->src.key[k];
		rc = cw_mdoc_append_pg(&child, name, strlen(name), cw_table_record_type(&ent->src, name, strlen(name)),
		                       &values.items[k], err);
	}
	if (rc == 0)
		bson_append_document_end(id, &child);
	cw_json_fields_clear(&values);
	return rc;
}

/* Whether the data lacks a field its entity always has (absent = unchanged). */
static bool lacks_fields(const mdb_entity_t *ent, const cw_json_fields_t *fields)
{
	if (ent->layout == CW_LAYOUT_TYPED) {
		for (size_t i = 0; i < ent->ncols; i++)
			if (cw_json_fields_get(fields, ent->col_names[i], strlen(ent->col_names[i])) == NULL)
				return true;
		return false;
	}
	for (size_t i = 0; i < ent->src.n; i++)
		if (!is_key_field(ent, ent->src.names[i], strlen(ent->src.names[i])) &&
		    cw_json_fields_get(fields, ent->src.names[i], strlen(ent->src.names[i])) == NULL)
			return true;
	return false;
}

static int build_document_layout(const cw_write_t *w, const cw_json_fields_t *fields, built_t *b,
                                 cw_err_t *err)
{
	const cw_json_field_t *doc = cw_json_fields_get(fields, CW_LAYOUT_DOC_COLUMN, 3);
	if (doc == NULL)
		return cw_err_set(err, CW_EINVAL, MDB_COMPONENT, "the data holds no \"doc\"");
	bson_t source = BSON_INITIALIZER;
	int rc = cw_mdoc_doc_field(&source, doc, err);
	bson_iter_t it;
	if (rc == 0 && bson_iter_init_find(&it, &source, "_id"))
		bson_append_iter(&b->id, "_id", 3, &it);
	else if (rc == 0)
		BSON_APPEND_UTF8(&b->id, "_id", w->doc_id);
	if (rc == 0 && !bson_has_field(&source, "_id"))
		BSON_APPEND_UTF8(&b->doc, "_id", w->doc_id);
	if (rc == 0 && bson_iter_init(&it, &source)) {
		while (bson_iter_next(&it))
			if (strcmp(bson_iter_key(&it), MDB_META_FIELD) != 0)
				bson_append_iter(&b->doc, bson_iter_key(&it), -1, &it);
	}
	bson_destroy(&source);
	return rc;
}

static int build_fields(const mdb_entity_t *ent, const cw_write_t *w,
                        const cw_json_fields_t *fields, built_t *b, cw_err_t *err)
{
	int rc = 0;
	bool dynamic = ent->layout == CW_LAYOUT_DYNAMIC;
	if (dynamic && ent->src.nkey == 1) {
		const char *k = ent->src.key[0];
		const cw_json_field_t *f = cw_json_fields_get(fields, k, strlen(k));
		rc = f != NULL ? cw_mdoc_append_pg(&b->id, "_id", 3, cw_table_record_type(&ent->src, k, strlen(k)), f, err)
		               : id_from_doc_id(ent, w->doc_id, &b->id, err);
	} else {
		rc = id_from_doc_id(ent, w->doc_id, &b->id, err);
	}
	if (rc == 0 && !b->partial) {
		bson_iter_t it;
		if (bson_iter_init_find(&it, &b->id, "_id"))
			bson_append_iter(&b->doc, "_id", 3, &it);
	}
	/*
	 * A row written before hub schema version 8 holds jsonb's sorted keys,
	 * a transformation may reorder them: the document takes the order of the
	 * shape's columns or the source table's, then any other field.
	 */
	size_t nnames = dynamic ? ent->src.n : ent->ncols;
	char *const *names = dynamic ? ent->src.names : ent->col_names;
	bool *done = cw_xcalloc(fields->len + 1, sizeof *done);
	for (size_t pass = 0; pass < 2; pass++) {
		for (size_t n = 0; rc == 0 && n < (pass == 0 ? nnames : fields->len); n++) {
			const cw_json_field_t *f = pass == 0 ? cw_json_fields_get(fields, names[n],
			                                                            strlen(names[n]))
			                                     : &fields->items[n];
			size_t at = f != NULL ? (size_t)(f - fields->items) : 0;
			if (f == NULL || done[at] || (dynamic && is_key_field(ent, f->key, f->key_len)))
				continue;
			done[at] = true;
			const char *type = dynamic ? cw_table_record_type(&ent->src, f->key, f->key_len)
			                 : pass == 0 && ent->col_types[n] == CW_COL_INTEGER ? "bigint" : NULL;
			rc = cw_mdoc_append_pg(&b->doc, f->key, f->key_len, type, f, err);
		}
	}
	free(done);
	return rc;
}

/* Builds an upsert's document; *why says what made it fail (the write is quarantined). */
static int build_upsert(const mdb_entity_t *ent, const cw_write_t *w, built_t *b, cw_err_t *why)
{
	cw_json_fields_t store;
	cw_json_fields_init(&store);
	const cw_json_fields_t *fields = w->fields;
	int rc = 0;
	if (fields == NULL) {
		rc = cw_json_fields_parse(&store, w->raw != NULL ? w->raw : "{}", why);
		fields = &store;
	}
	if (rc == 0 && ent->layout == CW_LAYOUT_DOCUMENT) {
		rc = build_document_layout(w, fields, b, why);
	} else if (rc == 0) {
		b->partial = !w->replace && lacks_fields(ent, fields);
		rc = build_fields(ent, w, fields, b, why);
	}
	if (rc == 0)
		append_meta(&b->doc, w);
	if (rc == 0 && b->doc.len > DOCUMENT_MAX)
		rc = cw_err_set(why, CW_EINVAL, MDB_COMPONENT, "document is %u bytes, more than the "
		                "server's limit of %d (BSONObjectTooLarge)", b->doc.len, DOCUMENT_MAX);
	cw_json_fields_clear(&store);
	return rc;
}

static int build_delete(const mdb_entity_t *ent, const cw_write_t *w, built_t *b, cw_err_t *why)
{
	if (ent->layout != CW_LAYOUT_DOCUMENT)
		return id_from_doc_id(ent, w->doc_id, &b->id, why);
	/*
	 * A MongoDB document's doc_id is the 24 hex digits of an ObjectId, a
	 * string _id itself, or another type's canonical extended JSON: each
	 * reading is a candidate, and the doc_id kept in the document decides.
	 */
	b->loose_id = true;
	bson_t in, candidates;
	bson_append_document_begin(&b->id, "_id", 3, &in);
	bson_append_array_begin(&in, "$in", 3, &candidates);
	int n = 0;
	char key[16];
	if (bson_oid_is_valid(w->doc_id, strlen(w->doc_id)) && strlen(w->doc_id) == 24) {
		bson_oid_t oid;
		bson_oid_init_from_string(&oid, w->doc_id);
		snprintf(key, sizeof key, "%d", n++);
		BSON_APPEND_OID(&candidates, key, &oid);
	}
	if (w->doc_id[0] == '{') {
		char *text = cw_xasprintf("{\"v\":%s}", w->doc_id);
		bson_t parsed;
		bson_iter_t it;
		if (bson_init_from_json(&parsed, text, -1, NULL)) {
			snprintf(key, sizeof key, "%d", n++);
			if (bson_iter_init_find(&it, &parsed, "v"))
				bson_append_iter(&candidates, key, -1, &it);
			bson_destroy(&parsed);
		}
		free(text);
	}
	snprintf(key, sizeof key, "%d", n++);
	BSON_APPEND_UTF8(&candidates, key, w->doc_id);
	bson_append_array_end(&in, &candidates);
	bson_append_document_end(&b->id, &in);
	BSON_APPEND_UTF8(&b->id, MDB_META_FIELD ".doc_id", w->doc_id);
	return 0;
}

/*
 * {_id..., "_cachewarp.oplog_id": {$not: {$gte: id}}} while a newer version
 * may be there (guarded), else {_id...}: only a change written before the
 * entity was opened can be newer than one being applied, as this process
 * writes an entity's changes in order.
 */
static void guarded_filter(const built_t *b, int64_t oplog_id, bool guarded, bson_t *filter)
{
	bson_init(filter);
	bson_concat(filter, &b->id);
	if (!guarded)
		return;
	bson_t not_, gte;
	bson_append_document_begin(filter, MDB_META_FIELD ".oplog_id", -1, &not_);
	bson_append_document_begin(&not_, "$not", 4, &gte);
	BSON_APPEND_INT64(&gte, "$gte", oplog_id);
	bson_append_document_end(&not_, &gte);
	bson_append_document_end(filter, &not_);
}

/* ---- quarantine ------------------------------------------------------------------ */

typedef struct batch_ctx {
	mdb_target_t *t;
	mdb_entity_t *ent;
	mongoc_collection_t *coll;
	mongoc_client_session_t *session;   /* NULL: no transaction */
	bool write_errors;                  /* a write the server refused (the transaction is lost) */
	unsigned labels;                    /* of the last error in the transaction (mdb_error_labels) */
	size_t ok, skipped, quarantined;
} batch_ctx_t;

/* err from a failed write to the entity's collection; the reply's error labels are kept. */
static int write_error(batch_ctx_t *b, const bson_error_t *error, const bson_t *reply,
                       const char *what, cw_err_t *err)
{
	b->labels |= mdb_error_labels(reply);
	return mdb_error(b->t, error, what, err);
}

/* The write's data as text for its quarantine record (owned). */
static char *write_text(const cw_write_t *w, bool *truncated)
{
	cw_buf_t out = CW_BUF_INIT;
	if (w->raw != NULL) {
		cw_buf_append_str(&out, w->raw);
	} else if (w->fields != NULL) {
		cw_buf_append_char(&out, '{');
		for (size_t i = 0; i < w->fields->len && out.len <= QUARANTINE_TEXT_MAX; i++) {
			cw_json_t jw;
			if (i > 0)
				cw_buf_append_char(&out, ',');
			cw_json_init(&jw, &out, CW_JSON_DEFAULT);
			cw_json_string_len(&jw, w->fields->items[i].key, w->fields->items[i].key_len, NULL);
			cw_buf_append_char(&out, ':');
			cw_buf_append(&out, w->fields->items[i].value, w->fields->items[i].value_len);
		}
		cw_buf_append_char(&out, '}');
	}
	*truncated = out.len > QUARANTINE_TEXT_MAX;
	if (*truncated) {
		size_t cut = QUARANTINE_TEXT_MAX;
		while (cut > 0 && ((unsigned char)out.data[cut] & 0xC0) == 0x80)
			cut--;   /* not inside a UTF-8 sequence */
		out.len = cut;
		out.data[cut] = '\0';
	}
	cw_buf_append_str(&out, "");
	return cw_buf_take(&out);
}

static int quarantine(batch_ctx_t *b, const cw_write_t *w, uint32_t code, const char *reason,
                      cw_err_t *err)
{
	mdb_target_t *t = b->t;
	bool truncated = false;
	char *text = write_text(w, &truncated);
	bson_t *record = BCON_NEW("target", BCON_UTF8(t->name), "entity", BCON_UTF8(b->ent->entity),
	                          "collection", BCON_UTF8(b->ent->collection),
	                          "doc_id", BCON_UTF8(w->doc_id), "oplog_id", BCON_INT64(w->oplog_id),
	                          "code", BCON_INT32((int32_t)code), "reason", BCON_UTF8(reason),
	                          "data", BCON_UTF8(text), "truncated", BCON_BOOL(truncated),
	                          "at", BCON_DATE_TIME(cw_clock_wall_us(cw_clock_system()) / 1000));
	mongoc_collection_t *coll = mdb_collection(t, MDB_QUARANTINE_COLLECTION);
	bson_error_t error;
	int rc = 0;
	if (!mongoc_collection_insert_one(coll, record, NULL, NULL, &error))
		rc = mdb_error(t, &error, "could not quarantine a document", err);
	mongoc_collection_destroy(coll);
	bson_destroy(record);
	free(text);
	if (rc != 0)
		return rc;
	b->quarantined++;
	cw_log_kv(CW_LOG_WARN, MDB_COMPONENT, "document refused by the target: quarantined", "target",
	          t->name, "entity", b->ent->entity, "doc_id", w->doc_id, "reason", reason, NULL);
	return 0;
}

/* ---- bulk writes ------------------------------------------------------------------- */

static int append_op(batch_ctx_t *b, mongoc_bulk_operation_t *bulk, const cw_write_t *w,
                     bool *added, cw_err_t *err)
{
	*added = false;
	built_t built;
	built_init(&built);
	cw_err_t why = {0};
	int rc = w->kind == CW_WRITE_DELETE ? build_delete(b->ent, w, &built, &why)
	                                    : build_upsert(b->ent, w, &built, &why);
	if (rc != 0) {
		built_free(&built);
		return quarantine(b, w, 0, why.message, err);
	}
	bson_t filter;
	guarded_filter(&built, w->oplog_id, w->oplog_id <= b->ent->guard_until, &filter);
	/* the server judges field names: its error is what the quarantine keeps */
	bson_t *opts = BCON_NEW("upsert", BCON_BOOL(true), "validate", BCON_BOOL(false));
	bson_error_t error;
	bool ok;
	if (w->kind == CW_WRITE_DELETE) {
		ok = mongoc_bulk_operation_remove_one_with_opts(bulk, &filter, NULL, &error);
	} else if (built.partial) {
		bson_t update = BSON_INITIALIZER;
		BSON_APPEND_DOCUMENT(&update, "$set", &built.doc);
		ok = mongoc_bulk_operation_update_one_with_opts(bulk, &filter, &update, opts, &error);
		bson_destroy(&update);
	} else {
		ok = mongoc_bulk_operation_replace_one_with_opts(bulk, &filter, &built.doc, opts, &error);
	}
	bson_destroy(opts);
	bson_destroy(&filter);
	built_free(&built);
	if (!ok)   /* refused by the driver before it was sent */
		return quarantine(b, w, error.code, error.message, err);
	*added = true;
	return 0;
}

/* The first writeError of a bulk reply for each operation index: code and message. */
static void handle_reply(const bson_t *reply, size_t nops, uint32_t *codes, char **messages,
                         bool *failed)
{
	bson_iter_t it, errors;
	if (!bson_iter_init_find(&it, reply, "writeErrors") || !BSON_ITER_HOLDS_ARRAY(&it) ||
	    !bson_iter_recurse(&it, &errors))
		return;
	while (bson_iter_next(&errors)) {
		bson_iter_t e;
		if (!BSON_ITER_HOLDS_DOCUMENT(&errors) || !bson_iter_recurse(&errors, &e))
			continue;
		int64_t index = -1;
		uint32_t code = 0;
		const char *message = "refused by the server";
		while (bson_iter_next(&e)) {
			if (strcmp(bson_iter_key(&e), "index") == 0 && BSON_ITER_HOLDS_NUMBER(&e))
				index = bson_iter_as_int64(&e);
			else if (strcmp(bson_iter_key(&e), "code") == 0 && BSON_ITER_HOLDS_NUMBER(&e))
				code = (uint32_t)bson_iter_as_int64(&e);
			else if (strcmp(bson_iter_key(&e), "errmsg") == 0 && BSON_ITER_HOLDS_UTF8(&e))
				message = bson_iter_utf8(&e, NULL);
		}
		if (index < 0 || (size_t)index >= nops || failed[index])
			continue;
		failed[index] = true;
		codes[index] = code;
		messages[index] = cw_xstrdup(message);
	}
}

/* Whether the reply carries a writeConcernError. */
static bool write_concern_failed(const bson_t *reply)
{
	bson_iter_t it, items;
	return bson_iter_init_find(&it, reply, "writeConcernErrors") && BSON_ITER_HOLDS_ARRAY(&it) &&
	       bson_iter_recurse(&it, &items) && bson_iter_next(&items);
}

/* One segment (writes [from, to), no sweep) as one unordered bulk write. */
static int write_segment(batch_ctx_t *b, const cw_write_list_t *writes, size_t from, size_t to,
                         cw_err_t *err)
{
	mdb_target_t *t = b->t;
	bson_t opts = BSON_INITIALIZER;
	BSON_APPEND_BOOL(&opts, "ordered", false);
	bson_error_t error;
	int rc = 0;
	if (b->session != NULL && !mongoc_client_session_append(b->session, &opts, &error))
		rc = mdb_error(t, &error, "could not start a bulk write", err);
	mongoc_bulk_operation_t *bulk = rc == 0
	    ? mongoc_collection_create_bulk_operation_with_opts(b->coll, &opts) : NULL;
	bson_destroy(&opts);
	const cw_write_t **ops = cw_xcalloc(to - from + 1, sizeof *ops);
	size_t nops = 0;
	for (size_t i = from; rc == 0 && i < to; i++) {
		bool added = false;
		rc = append_op(b, bulk, &writes->items[i], &added, err);
		if (added)
			ops[nops++] = &writes->items[i];
	}
	if (rc != 0 || nops == 0) {
		mongoc_bulk_operation_destroy(bulk);
		free(ops);
		return rc;
	}
	bson_t reply;
	int64_t started = cw_clock_now_ms(cw_clock_system());
	bool ok = mongoc_bulk_operation_execute(bulk, &reply, &error) != 0;
	cw_metrics_observe(t->ctx->metrics, "cachewarp_target_bulk_write_duration_seconds", t->labels,
	                   (double)(cw_clock_now_ms(cw_clock_system()) - started) / 1e3);
	mongoc_bulk_operation_destroy(bulk);
	uint32_t *codes = cw_xcalloc(nops, sizeof *codes);
	char **messages = cw_xcalloc(nops, sizeof *messages);
	bool *failed = cw_xcalloc(nops, sizeof *failed);
	if (!ok)
		handle_reply(&reply, nops, codes, messages, failed);
	size_t nfailed = 0;
	for (size_t i = 0; i < nops; i++)
		nfailed += failed[i];
	if (!ok && (nfailed == 0 || write_concern_failed(&reply)))   /* not a document's doing */
		rc = write_error(b, &error, &reply, "bulk write failed", err);
	for (size_t i = 0; rc == 0 && i < nops; i++) {
		if (!failed[i]) {
			b->ok++;
		} else if (codes[i] == DUPLICATE_KEY) {
			b->skipped++;   /* a newer version of the document is there */
		} else if (mdb_error_is_permanent(codes[i])) {
			b->write_errors = true;
			if (b->session == NULL)
				rc = quarantine(b, ops[i], codes[i], messages[i], err);
		} else {   /* the server's code decides whose the error is (apply/stream.h) */
			rc = cw_err_set(err, CW_EDB, MDB_COMPONENT, "target \"%s\", entity \"%s\": a write "
			                "to \"%s\" failed: %s (code %u)", t->name, b->ent->entity,
			                b->ent->collection, messages[i], codes[i]);
			char code[16];
			snprintf(code, sizeof code, "%u", codes[i]);
			cw_err_set_server_code(err, code);
		}
	}
	if (b->session != NULL && b->skipped > 0)
		b->write_errors = true;   /* any write error ends a transaction */
	for (size_t i = 0; i < nops; i++)
		free(messages[i]);
	free(messages);
	free(codes);
	free(failed);
	free(ops);
	bson_destroy(&reply);
	return rc;
}

static int sweep(batch_ctx_t *b, const cw_write_t *w, cw_err_t *err)
{
	bson_t *filter = BCON_NEW(MDB_META_FIELD ".version", "{", "$lt", BCON_INT64(w->version), "}");
	bson_t opts = BSON_INITIALIZER;
	bson_error_t error;
	int rc = 0;
	if (b->session != NULL && !mongoc_client_session_append(b->session, &opts, &error))
		rc = mdb_error(b->t, &error, "could not sweep a generation", err);
	bson_t reply = BSON_INITIALIZER;
	if (rc == 0 && !mongoc_collection_delete_many(b->coll, filter, &opts, &reply, &error))
		rc = write_error(b, &error, &reply, "could not sweep a generation", err);
	bson_destroy(&reply);
	bson_destroy(&opts);
	bson_destroy(filter);
	return rc;
}

/* Every segment and sweep, in order, then the entity's position. */
static int write_all(batch_ctx_t *b, const cw_write_list_t *writes, int64_t upto, cw_err_t *err)
{
	int rc = 0;
	/* the intent first: after a crash in the bulk write, the next open guards up to it */
	int64_t newest = 0;
	for (size_t i = 0; i < writes->len; i++)
		newest = writes->items[i].oplog_id > newest ? writes->items[i].oplog_id : newest;
	if (b->session == NULL && newest > b->ent->guard_until)
		rc = mdb_store_position(b->t, NULL, b->ent->entity, "writing_upto", newest, NULL, err);
	size_t from = 0;
	for (size_t i = 0; rc == 0 && i <= writes->len; i++) {
		if (i < writes->len && writes->items[i].kind != CW_WRITE_SWEEP)
			continue;
		if (i > from)
			rc = write_segment(b, writes, from, i, err);
		if (rc == 0 && i < writes->len)
			rc = sweep(b, &writes->items[i], err);
		from = i + 1;
		if (b->session != NULL && b->write_errors)
			return 0;   /* the transaction is lost: the caller writes the batch without one */
	}
	if (rc == 0)
		rc = mdb_store_position(b->t, b->session, b->ent->entity, "position", upto, &b->labels,
		                        err);
	return rc;
}

/* Commits the batch's transaction; *labels: the failure's error labels. */
static int commit(batch_ctx_t *b, unsigned *labels, cw_err_t *err)
{
	bson_t reply;
	bson_error_t error;
	int rc = 0;
	if (!mongoc_client_session_commit_transaction(b->session, &reply, &error)) {
		*labels = mdb_error_labels(&reply);
		rc = mdb_error(b->t, &error, "could not commit a batch", err);
	}
	bson_destroy(&reply);
	return rc;
}

/* Counts of one attempt start again: a transaction rolled back wrote nothing. */
static void attempt_reset(batch_ctx_t *b)
{
	b->ok = b->skipped = b->quarantined = 0;
	b->write_errors = false;
	b->labels = 0;
}

/*
 * One attempt: the batch in a transaction of b->session, and its commit
 * (again while its outcome is unknown). *next says what follows.
 */
static int attempt_transaction(batch_ctx_t *b, const cw_write_list_t *writes, int64_t upto,
                               int attempt, mdb_txn_next_t *next, cw_err_t *err)
{
	bson_error_t error;
	attempt_reset(b);
	int rc = 0;
	if (!mongoc_client_session_start_transaction(b->session, NULL, &error))
		rc = mdb_error(b->t, &error, "could not start a transaction", err);
	if (rc == 0)
		rc = write_all(b, writes, upto, err);
	*next = mdb_txn_next(rc != 0, false, b->labels, b->write_errors, attempt);
	if (*next != MDB_TXN_DONE) {
		if (mongoc_client_session_in_transaction(b->session))
			mongoc_client_session_abort_transaction(b->session, NULL);
		return rc;
	}
	for (int commits = 1;; commits++) {
		unsigned labels = 0;
		rc = commit(b, &labels, err);
		*next = mdb_txn_next(rc != 0, true, labels, false, commits);
		if (*next != MDB_TXN_RETRY_COMMIT)
			return rc;
		cw_log_kv(CW_LOG_INFO, MDB_COMPONENT, "commit outcome unknown: committing again",
		          "target", b->t->name, "entity", b->ent->entity, "reason", err->message, NULL);
	}
}

/*
 * The batch in one transaction, run again after a transient error;
 * *without: a refused write aborted it, and the caller writes the batch
 * without one.
 */
static int write_in_transaction(batch_ctx_t *b, const cw_write_list_t *writes, int64_t upto,
                                bool *without, cw_err_t *err)
{
	*without = false;
	bson_error_t error;
	b->session = mongoc_client_start_session(b->t->client, NULL, &error);
	if (b->session == NULL)
		return mdb_error(b->t, &error, "could not start a session", err);
	int rc = 0;
	mdb_txn_next_t next = MDB_TXN_RETRY;
	for (int attempt = 1; next == MDB_TXN_RETRY; attempt++) {
		rc = attempt_transaction(b, writes, upto, attempt, &next, err);
		if (next == MDB_TXN_RETRY)
			cw_log_kv(CW_LOG_INFO, MDB_COMPONENT, "transient transaction error: writing the "
			          "batch again", "target", b->t->name, "entity", b->ent->entity, "reason",
			          err->message, NULL);
	}
	*without = next == MDB_TXN_WITHOUT;
	mongoc_client_session_destroy(b->session);
	b->session = NULL;
	return rc;
}

static void count_results(const batch_ctx_t *b, const char *entity, size_t failed)
{
	mdb_target_t *t = b->t;
	mdb_count_writes(t, "ok", b->ok);
	mdb_count_writes(t, "skipped", b->skipped);
	mdb_count_writes(t, "quarantined", b->quarantined);
	mdb_count_writes(t, "failed", failed);
	if (b->quarantined > 0) {
		char labels[256];
		snprintf(labels, sizeof labels, "%s,entity=\"%s\"", t->labels, entity);
		cw_metrics_counter_add(t->ctx->metrics, "cachewarp_target_quarantined_total", labels,
		                       (double)b->quarantined);
	}
}

int mdb_apply(mdb_target_t *t, mdb_entity_t *ent, const cw_write_list_t *writes, int64_t upto,
              cw_err_t *err)
{
	batch_ctx_t b = {.t = t, .ent = ent, .coll = mdb_collection(t, ent->collection)};
	int rc = 0;
	bool without = !t->transactions;
	if (t->transactions) {
		rc = write_in_transaction(&b, writes, upto, &without, err);
		if (without)   /* rolled back: counted again as they are written again */
			attempt_reset(&b);
	}
	if (rc == 0 && without)
		rc = write_all(&b, writes, upto, err);
	/* a failed batch is written again whole: its writes count as failed once */
	size_t failed = 0;
	for (size_t i = 0; rc != 0 && i < writes->len; i++)
		failed += writes->items[i].kind != CW_WRITE_SWEEP;
	if (rc != 0)
		b.ok = b.skipped = b.quarantined = 0;
	count_results(&b, ent->entity, failed);
	mongoc_collection_destroy(b.coll);
	return rc;
}
