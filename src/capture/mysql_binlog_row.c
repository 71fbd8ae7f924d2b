/*
 * This file contains the row images of the binlog decoder declared in
 * mysql_binlog.h: it walks the rows of a WRITE, UPDATE or DELETE_ROWS event
 * and turns each into a change's doc_id and data. Columns a MINIMAL image
 * leaves out are absent from data; the key comes from the before image of
 * an UPDATE or DELETE and from the after image when the UPDATE changed it.
 */
#include "capture/mysql_binlog_internal.h"

#include "core/json.h"
#include "core/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One decoded image: per column whether present, null, and its text. */
typedef struct image {
	uint32_t ncolumns;
	bool present[CW_BINLOG_MAX_COLUMNS];
	cw_binlog_value_kind_t kind[CW_BINLOG_MAX_COLUMNS];
	size_t start[CW_BINLOG_MAX_COLUMNS];   /* offsets into text */
	size_t len[CW_BINLOG_MAX_COLUMNS];
	cw_buf_t text;
} image_t;

static bool bit(const uint8_t *bitmap, uint32_t i)
{
	return (bitmap[i / 8] >> (i % 8)) & 1;
}

/* An image's error, named by its event and table (formatted only when one happens). */
static int image_error(const cw_binlog_event_t *ev, cw_err_t *err)
{
	const cw_binlog_table_t *t = ev->rows.table;
	cw_err_prefix(err, "%s event of \"%s.%s\"", cw_binlog_type_name(ev->type), t->schema,
		t->name);
	return CW_EPROTO;
}

static int read_image(cw_binlog_event_t *ev, const uint8_t *present, image_t *img, cw_err_t *err)
{
	const cw_binlog_table_t *t = ev->rows.table;
	cw_binlog_reader_t r = {ev->rows.bytes, ev->rows.end, ev->rows.pos, "row image", err, NULL};
	uint32_t npresent = 0;
	for (uint32_t i = 0; i < t->ncolumns; i++)
		npresent += bit(present, i);
	size_t nulls = (npresent + 7) / 8;
	if (cw_binlog_need(&r, nulls, "null bitmap"))
		return image_error(ev, err);
	const uint8_t *null_bitmap = r.bytes + r.pos;
	r.pos += nulls;
	cw_buf_reset(&img->text);
	img->ncolumns = t->ncolumns;
	for (uint32_t i = 0, n = 0; i < t->ncolumns; i++) {
		img->present[i] = bit(present, i);
		if (!img->present[i])
			continue;
		img->start[i] = img->text.len;
		if (bit(null_bitmap, n++)) {
			img->kind[i] = CW_BINLOG_VALUE_NULL;
			img->len[i] = 0;
			continue;
		}
		if (cw_binlog_value_read(&t->columns[i], r.bytes, &r.pos, r.len, &img->text,
			&img->kind[i], err))
			return image_error(ev, err);
		img->len[i] = img->text.len - img->start[i];
	}
	ev->rows.pos = r.pos;
	return 0;
}

static int write_value(cw_json_t *w, const image_t *img, uint32_t i, cw_err_t *err)
{
	const char *text = cw_buf_cstr(&img->text) + img->start[i];
	switch (img->kind[i]) {
	case CW_BINLOG_VALUE_NULL: return cw_json_null(w, err);
	case CW_BINLOG_VALUE_STRING: return cw_json_string_len(w, text, img->len[i], err);
	default: return cw_json_raw(w, text, img->len[i], err);
	}
}

/* Whether the image holds every key column, with no nulls. */
static bool has_key(const cw_binlog_table_t *t, const image_t *img)
{
	for (uint32_t k = 0; k < t->nkey; k++)
		if (!img->present[t->key[k]] || img->kind[t->key[k]] == CW_BINLOG_VALUE_NULL)
			return false;
	return true;
}

/* doc_id: a single key column's text, or a JSON array of the key values. */
static int write_doc_id(const cw_binlog_table_t *t, const image_t *img, cw_buf_t *out,
	cw_err_t *err)
{
	if (t->nkey == 1) {
		uint32_t i = t->key[0];
		if (memchr(cw_buf_cstr(&img->text) + img->start[i], '\0', img->len[i]) != NULL)
			return cw_err_set(err, CW_EPROTO, CW_BINLOG_DOMAIN,
				"key column \"%s\" of \"%s.%s\" holds a NUL byte", t->columns[i].name,
				t->schema, t->name);
		cw_buf_append(out, cw_buf_cstr(&img->text) + img->start[i], img->len[i]);
		return 0;
	}
	cw_json_t w;
	cw_json_init(&w, out, CW_JSON_NO_NUL);
	cw_json_array_begin(&w, err);
	for (uint32_t k = 0; k < t->nkey; k++)
		write_value(&w, img, t->key[k], err);
	cw_json_array_end(&w, err);
	return cw_json_finish(&w);
}

static int write_data(const cw_binlog_table_t *t, const image_t *img, cw_buf_t *out, cw_err_t *err)
{
	cw_json_t w;
	cw_json_init(&w, out, CW_JSON_NO_NUL);
	cw_json_object_begin(&w, err);
	for (uint32_t i = 0; i < t->ncolumns; i++) {
		if (!img->present[i])
			continue;
		cw_json_key(&w, t->columns[i].name, err);
		write_value(&w, img, i, err);
	}
	cw_json_object_end(&w, err);
	return cw_json_finish(&w);
}

static int check_table(const cw_binlog_table_t *t, cw_err_t *err)
{
	if (t->columns[0].name == NULL)
		return cw_err_set(err, CW_EINVAL, CW_BINLOG_DOMAIN,
			"table \"%s.%s\" has no column names (set binlog_row_metadata=FULL)",
			t->schema, t->name);
	if (t->nkey == 0)
		return cw_err_set(err, CW_EINVAL, CW_BINLOG_DOMAIN,
			"table \"%s.%s\" has no primary key", t->schema, t->name);
	return 0;
}

struct cw_binlog_images {
	image_t before, after;
};

void cw_binlog_images_free(cw_binlog_images_t *images)
{
	if (images == NULL)
		return;
	cw_buf_free(&images->before.text);
	cw_buf_free(&images->after.text);
	free(images);
}

int cw_binlog_row_next(cw_binlog_t *dec, cw_binlog_event_t *ev, cw_binlog_row_t *row,
	cw_err_t *err)
{
	const cw_binlog_table_t *t = ev->rows.table;
	cw_buf_t doc_id = CW_BUF_INIT, old_doc_id = CW_BUF_INIT, data = CW_BUF_INIT;
	int rc;
	memset(row, 0, sizeof *row);
	if (ev->kind != CW_BINLOG_ROWS)
		return cw_err_set(err, CW_EINVAL, CW_BINLOG_DOMAIN, "not a rows event");
	if (ev->rows.pos >= ev->rows.end)
		return 0;
	if ((rc = check_table(t, err)) != 0) {
		ev->rows.pos = ev->rows.end;
		return rc;
	}
	if (dec->images == NULL)
		dec->images = cw_xcalloc(1, sizeof *dec->images);
	image_t *before = &dec->images->before, *after = &dec->images->after;
	image_t *first = ev->rows.op == CW_BINLOG_WRITE ? after : before;
	if ((rc = read_image(ev, ev->rows.present, first, err)) != 0 ||
	    (ev->rows.op == CW_BINLOG_UPDATE &&
	     (rc = read_image(ev, ev->rows.present_after, after, err)) != 0))
		goto cleanup;
	if (!has_key(t, first)) {
		rc = cw_err_set(err, CW_EPROTO, CW_BINLOG_DOMAIN,
			"%s event of \"%s.%s\": the row image lacks the primary key",
			cw_binlog_type_name(ev->type), t->schema, t->name);
		goto cleanup;
	}
	if ((rc = write_doc_id(t, first, &doc_id, err)) != 0)
		goto cleanup;
	if (ev->rows.op == CW_BINLOG_DELETE) {
		row->op = CW_OP_DELETE;
		goto cleanup;
	}
	row->op = CW_OP_UPSERT;
	if (ev->rows.op == CW_BINLOG_UPDATE && has_key(t, after)) {
		if ((rc = write_doc_id(t, after, &old_doc_id, err)) != 0)
			goto cleanup;
		if (strcmp(cw_buf_cstr(&old_doc_id), cw_buf_cstr(&doc_id)) != 0) {
			/* the key changed: the new one is the doc_id, the old one goes */
			cw_buf_t swap = doc_id;
			doc_id = old_doc_id;
			old_doc_id = swap;
			row->old_doc_id = cw_buf_take(&old_doc_id);
		}
	}
	if ((rc = write_data(t, after, &data, err)) != 0)
		goto cleanup;
	row->data = cw_buf_take(&data);
cleanup:
	if (rc == 0) {
		row->doc_id = cw_buf_take(&doc_id);
		rc = 1;
	} else {
		cw_binlog_row_clear(row);
		ev->rows.pos = ev->rows.end;
	}
	cw_buf_free(&data);
	cw_buf_free(&old_doc_id);
	cw_buf_free(&doc_id);
	return rc;
}

void cw_binlog_row_clear(cw_binlog_row_t *row)
{
	if (row == NULL)
		return;
	free(row->doc_id);
	free(row->old_doc_id);
	free(row->data);
	memset(row, 0, sizeof *row);
}
