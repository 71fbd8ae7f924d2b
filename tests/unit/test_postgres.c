/*
 * This file contains the unit tests of the PostgreSQL source's pure parts
 * (capture/postgres*.c, no server): LSN text, identifier quoting, the source
 * registered for its type, names refused at open, and rows turned into
 * changes for every entity of a table (projection, key change, delete).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "capture/postgres_internal.h"
#include "capture/source.h"
#include "core/config.h"
#include "core/buf.h"
#include "core/mem.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void lsn_text_round_trips(void **state)
{
	(void)state;
	char text[32];
	uint64_t lsn = 0;
	pg_lsn_format(UINT64_C(0x16B374D848), text);
	assert_string_equal(text, "16/B374D848");
	assert_int_equal(pg_lsn_parse("16/B374D848", &lsn), 0);
	assert_true(lsn == UINT64_C(0x16B374D848));
	pg_lsn_format(0, text);
	assert_string_equal(text, "0/0");
	pg_lsn_format(UINT64_MAX, text);
	assert_string_equal(text, "FFFFFFFF/FFFFFFFF");
	assert_int_equal(pg_lsn_parse("0/1559760", &lsn), 0);
	assert_true(lsn == 0x1559760);
	assert_int_equal(pg_lsn_parse("", &lsn), CW_EINVAL);
	assert_int_equal(pg_lsn_parse("0/", &lsn), CW_EINVAL);
	assert_int_equal(pg_lsn_parse("1/2x", &lsn), CW_EINVAL);
	assert_int_equal(pg_lsn_parse(NULL, &lsn), CW_EINVAL);
}

static void identifiers_are_quoted(void **state)
{
	(void)state;
	cw_buf_t buf = CW_BUF_INIT;
	pg_quote_ident(&buf, "cachewarp");
	cw_buf_append_char(&buf, ' ');
	pg_quote_ident(&buf, "we\"ird");
	assert_string_equal(cw_buf_cstr(&buf), "\"cachewarp\" \"we\"\"ird\"");
	cw_buf_free(&buf);
}

static cw_config_t *load(const char *yaml)
{
	cw_config_t *config = NULL;
	cw_err_t err = {0};
	if (cw_config_load_buffer("t.yaml", yaml, strlen(yaml), NULL, &config, &err) != 0)
		fail_msg("config: %s", err.message);
	return config;
}

static const char *YAML =
	"hub: {url: 'postgresql://u:secret@127.0.0.1:1/h'}\n"
	"sources:\n  - {name: app, type: postgres, url: 'postgresql://u:secret@127.0.0.1:1/a'}\n"
	"entities:\n  - {name: items, source: app, table: public.items}\n";

static void source_is_registered_and_opens_without_io(void **state)
{
	(void)state;
	const cw_source_ops_t *ops = cw_source_ops_for(CW_SOURCE_POSTGRES);
	assert_non_null(ops);
	assert_string_equal(ops->type, "postgres");
	cw_config_t *config = load(YAML);
	cw_metrics_t *metrics = cw_metrics_new();
	cw_component_ctx_t ctx = {config, "app", NULL, 0, metrics, NULL};
	cw_err_t err = {0};
	void *source = ops->open(&ctx, &err);
	assert_non_null(source);
	cw_component_status_t status;
	ops->status(source, &status);
	assert_string_equal(status.state, "starting");
	assert_false(status.healthy);
	assert_int_equal(status.lag_bytes, -1);
	ops->close(source);
	ops->close(NULL);
	/* A name that is not a source of this type is refused. */
	ctx.name = "nope";
	assert_null(ops->open(&ctx, &err));
	assert_int_equal(err.code, CW_EINVAL);
	cw_metrics_free(metrics);
	cw_config_free(config);
}

/* A source struct wired by hand: two entities on public.items, one projected. */
typedef struct rig {
	cw_pg_source_t src;
	cw_config_t *config;
	cw_metrics_t *metrics;
	cw_component_ctx_t ctx;
	cw_pgoutput_column_t columns[2];
	cw_pgoutput_rel_t rel;
} rig_t;

static void rig_init(rig_t *rig)
{
	memset(rig, 0, sizeof *rig);
	rig->config = load(YAML);
	rig->metrics = cw_metrics_new();
	rig->ctx = (cw_component_ctx_t){rig->config, "app", NULL, 0, rig->metrics, NULL};
	rig->src.ctx = &rig->ctx;
	rig->src.cfg = &rig->config->sources[0];
	rig->src.dec = cw_pgoutput_new();
	const char *key[] = {"id"};
	cw_err_t err = {0};
	assert_int_equal(cw_pgoutput_set_primary_key(rig->src.dec, "public", "items", key, 1, &err), 0);
	rig->src.ents = cw_xcalloc(2, sizeof *rig->src.ents);
	rig->src.nents = 2;
	cw_column_t title = {(char *)"title", CW_COL_TEXT, (char *)"name"};
	cw_entity_t whole = {(char *)"items", (char *)"app", NULL, (char *)"public.items", NULL, 0,
	                     CW_ENTITY_LIVE, 3, NULL, 0,
	                     CW_ENTITY_MODE_STREAM, {0}, CW_ENTITY_ORIGIN_UNKNOWN, NULL, 0};
	cw_entity_t named = {(char *)"item_names", (char *)"app", NULL, (char *)"items", &title, 1,
	                     CW_ENTITY_LIVE, 1, NULL, 0,
	                     CW_ENTITY_MODE_STREAM, {0}, CW_ENTITY_ORIGIN_UNKNOWN, NULL, 0};
	cw_entity_copy(&rig->src.ents[0].entity, &whole);
	cw_entity_copy(&rig->src.ents[1].entity, &named);
	for (int i = 0; i < 2; i++) {
		strcpy(rig->src.ents[i].nspname, "public");
		strcpy(rig->src.ents[i].relname, "items");
	}
	rig->src.ents[1].proj = cw_projection_new(&named, CW_PROJECTION_DEFAULT, &err);
	assert_non_null(rig->src.ents[1].proj);
	rig->columns[0] = (cw_pgoutput_column_t){(char *)"id", 23, -1, CW_PGOUTPUT_COLUMN_KEY};
	rig->columns[1] = (cw_pgoutput_column_t){(char *)"name", 25, -1, 0};
	rig->rel = (cw_pgoutput_rel_t){1, (char *)"public", (char *)"items", 'd', 2, rig->columns};
}

static void rig_free(rig_t *rig)
{
	for (size_t i = 0; i < rig->src.nents; i++) {
		cw_projection_free(rig->src.ents[i].proj);
		cw_entity_clear(&rig->src.ents[i].entity);
	}
	free(rig->src.ents);
	cw_pgoutput_free(rig->src.dec);
	cw_change_batch_free(&rig->src.batch);
	cw_metrics_free(rig->metrics);
	cw_config_free(rig->config);
}

static void set_value(cw_pgoutput_value_t *value, const char *text)
{
	value->kind = text == NULL ? 'n' : 't';
	value->text = (const uint8_t *)text;
	value->len = text == NULL ? 0 : (uint32_t)strlen(text);
}

static void rows_become_changes_of_every_entity_of_the_table(void **state)
{
	(void)state;
	rig_t rig;
	rig_init(&rig);
	cw_pgoutput_value_t new_values[2], old_values[2];
	set_value(&new_values[0], "8");
	set_value(&new_values[1], "Grüße");
	set_value(&old_values[0], "7");
	set_value(&old_values[1], NULL);
	cw_pgoutput_msg_t msg = {0};
	msg.kind = CW_PGOUTPUT_UPDATE;
	msg.row.relation = &rig.rel;
	msg.row.old_kind = 'K';
	msg.row.old_tuple = (cw_pgoutput_tuple_t){2, old_values};
	msg.row.new_tuple = (cw_pgoutput_tuple_t){2, new_values};
	cw_err_t err = {0};
	assert_int_equal(pg_push_row(&rig.src, &msg, "0/10", 1234, &err), 0);
	/* Key 7 -> 8: a delete of the old doc_id, then the upsert, for each entity. */
	assert_int_equal(rig.src.batch.len, 4);
	cw_change_t *c = rig.src.batch.items;
	assert_int_equal(c[0].op, CW_OP_DELETE);
	assert_string_equal(c[0].entity, "items");
	assert_string_equal(c[0].doc_id, "7");
	assert_int_equal(c[0].version, 3);
	assert_int_equal(c[1].op, CW_OP_UPSERT);
	assert_string_equal(c[1].doc_id, "8");
	assert_string_equal(c[1].data, "{\"id\":8,\"name\":\"Grüße\"}");
	assert_string_equal(c[1].source_pos, "0/10");
	assert_int_equal(c[1].created_at_us, 1234);
	assert_string_equal(c[2].entity, "item_names");
	assert_int_equal(c[2].op, CW_OP_DELETE);
	assert_string_equal(c[3].data, "{\"title\":\"Grüße\"}");
	assert_int_equal(c[3].version, 1);
	/* A scan writes to one entity only. */
	cw_change_batch_clear(&rig.src.batch);
	rig.src.only = &rig.src.ents[1];
	msg.kind = CW_PGOUTPUT_INSERT;
	msg.row.old_kind = '\0';
	assert_int_equal(pg_push_row(&rig.src, &msg, "0/20", 0, &err), 0);
	assert_int_equal(rig.src.batch.len, 1);
	assert_string_equal(rig.src.batch.items[0].entity, "item_names");
	rig.src.only = NULL;
	/* A table no entity reads gives nothing. */
	cw_change_batch_clear(&rig.src.batch);
	cw_pgoutput_rel_t other = rig.rel;
	other.relname = (char *)"other";
	msg.row.relation = &other;
	assert_int_equal(pg_push_row(&rig.src, &msg, "0/30", 0, &err), 0);
	assert_int_equal(rig.src.batch.len, 0);
	/* A sweep carries the entity's version and no document. */
	pg_push_sweep(&rig.src, &rig.src.ents[0], "0/40");
	assert_int_equal(rig.src.batch.items[0].op, CW_OP_SWEEP);
	assert_null(rig.src.batch.items[0].doc_id);
	assert_int_equal(rig.src.batch.items[0].version, 3);
	rig_free(&rig);
}

/* The file at CW_SOURCE_DIR/rel, NUL-terminated (owned by the caller). */
static char *read_doc(const char *rel)
{
	const char *dir = getenv("CW_SOURCE_DIR");
	assert_non_null(dir);
	char *path = cw_xasprintf("%s/%s", dir, rel);
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		fail_msg("cannot read %s", path);
	cw_buf_t text = CW_BUF_INIT;
	char chunk[4096];
	size_t got;
	while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
		cw_buf_append(&text, chunk, got);
	fclose(f);
	free(path);
	return cw_buf_take(&text);
}

/*
 * The docs name the pgoutput protocol version the source asks for, and no
 * other: every "protocol version N" and "proto_version 'N'" is
 * PG_PROTO_VERSION, and the source is not said to stream running
 * transactions (version 1 does not).
 */
static void docs_name_the_protocol_version_the_source_uses(void **state)
{
	(void)state;
	static const char *const docs[] = {"docs/pgoutput.md", "docs/sources-postgres.md"};
	static const char *const phrases[] = {"protocol version ", "proto_version '"};
	for (size_t d = 0; d < sizeof docs / sizeof docs[0]; d++) {
		char *text = read_doc(docs[d]);
		for (char *p = text; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		size_t mentions = 0;
		for (size_t k = 0; k < sizeof phrases / sizeof phrases[0]; k++) {
			for (const char *at = strstr(text, phrases[k]); at != NULL;
			     at = strstr(at + 1, phrases[k])) {
				char version = at[strlen(phrases[k])];
				if (version != PG_PROTO_VERSION[0])
					fail_msg("%s says \"%.40s\"; the source uses version %s", docs[d], at,
					         PG_PROTO_VERSION);
				mentions++;
			}
		}
		if (mentions == 0)
			fail_msg("%s does not name the protocol version", docs[d]);
		assert_null(strstr(text, "or 2 when streaming"));
		assert_null(strstr(text, "streamed while still running"));
		free(text);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(lsn_text_round_trips),
		cmocka_unit_test(identifiers_are_quoted),
		cmocka_unit_test(source_is_registered_and_opens_without_io),
		cmocka_unit_test(rows_become_changes_of_every_entity_of_the_table),
		cmocka_unit_test(docs_name_the_protocol_version_the_source_uses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
