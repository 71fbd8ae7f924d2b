/*
 * Unit tests of the paused entity decision (control/entity_pause.h): which
 * entities of the hub the configuration file pauses and resumes, and the
 * status users see; plus the cachewarp_entity_paused gauge.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "control/entity_pause.h"
#include "core/buf.h"
#include "core/mem.h"

#include <stdlib.h>
#include <string.h>

/* One PostgreSQL source, one entity of it in the file. */
static const char config_text[] =
	"hub: {url: \"postgresql://127.0.0.1/hub\"}\n"
	"sources:\n"
	"  - {name: shop, type: postgres, url: \"postgresql://127.0.0.1/shop\"}\n"
	"entities:\n"
	"  - {name: orders, source: shop, table: public.orders}\n"
	"targets:\n"
	"  - {name: local, type: sqlite, dir: /tmp/cw-local}\n";

static cw_config_t *load(void)
{
	cw_buf_t errors = CW_BUF_INIT;
	cw_config_load_opts_t opts = {NULL, &errors};
	cw_config_t *config = NULL;
	cw_err_t err = {0};
	if (cw_config_load_buffer("/etc/cachewarp/cachewarp.yaml", config_text, strlen(config_text),
	                          &opts, &config, &err) != 0)
		fail_msg("config does not load:\n%s", cw_buf_cstr(&errors));
	cw_buf_free(&errors);
	return config;
}

/* An entity as the hub stores it (strings borrowed: never cleared). */
static cw_entity_t stored(const char *name, const char *source, cw_entity_origin_t origin,
                          cw_entity_status_t status, const char *paused_reason)
{
	cw_entity_t e;
	memset(&e, 0, sizeof e);
	e.name = (char *)name;
	e.source = (char *)source;
	e.table = (char *)"public.t";
	e.status = status;
	e.version = 1;
	e.origin = origin;
	e.paused_reason = (char *)paused_reason;
	return e;
}

/* The file no longer lists an entity it declared: paused, whatever its scan status. */
static void removed_file_entity_is_paused(void **state)
{
	(void)state;
	cw_config_t *config = load();
	cw_entity_status_t statuses[] = {CW_ENTITY_PENDING, CW_ENTITY_SCANNING, CW_ENTITY_LIVE};
	for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
		cw_entity_t e = stored("items", "shop", CW_ENTITY_ORIGIN_FILE, statuses[i], NULL);
		assert_int_equal(cw_entity_pause_decide(config, &e), CW_ENTITY_PAUSE_PAUSE);
	}
	cw_config_free(config);
}

/* Listed in the file, not paused: nothing to do. */
static void listed_entity_is_kept(void **state)
{
	(void)state;
	cw_config_t *config = load();
	cw_entity_t e = stored("orders", "shop", CW_ENTITY_ORIGIN_FILE, CW_ENTITY_LIVE, NULL);
	assert_int_equal(cw_entity_pause_decide(config, &e), CW_ENTITY_PAUSE_KEEP);
	cw_config_free(config);
}

/* An entity added through the API or the CLI is never paused by the file. */
static void api_entity_is_never_paused(void **state)
{
	(void)state;
	cw_config_t *config = load();
	cw_entity_t e = stored("items", "shop", CW_ENTITY_ORIGIN_API, CW_ENTITY_LIVE, NULL);
	assert_int_equal(cw_entity_pause_decide(config, &e), CW_ENTITY_PAUSE_KEEP);
	cw_config_free(config);
}

/* Stored before the hub kept origins and not in the file: left as it was (flowing). */
static void unknown_origin_is_kept(void **state)
{
	(void)state;
	cw_config_t *config = load();
	cw_entity_t e = stored("items", "shop", CW_ENTITY_ORIGIN_UNKNOWN, CW_ENTITY_LIVE, NULL);
	assert_int_equal(cw_entity_pause_decide(config, &e), CW_ENTITY_PAUSE_KEEP);
	cw_config_free(config);
}

/* A source this file does not configure belongs to another process's file. */
static void other_files_source_is_left_alone(void **state)
{
	(void)state;
	cw_config_t *config = load();
	cw_entity_t e = stored("items", "billing", CW_ENTITY_ORIGIN_FILE, CW_ENTITY_LIVE, NULL);
	assert_int_equal(cw_entity_pause_decide(config, &e), CW_ENTITY_PAUSE_KEEP);
	cw_config_free(config);
}

/* Paused and listed again: resumed; paused and still absent: stays paused. */
static void paused_entity_resumes_when_listed_again(void **state)
{
	(void)state;
	cw_config_t *config = load();
	cw_entity_t back = stored("orders", "shop", CW_ENTITY_ORIGIN_FILE, CW_ENTITY_LIVE,
	                          CW_ENTITY_PAUSE_REASON);
	assert_int_equal(cw_entity_pause_decide(config, &back), CW_ENTITY_PAUSE_RESUME);
	cw_entity_t absent = stored("items", "shop", CW_ENTITY_ORIGIN_FILE, CW_ENTITY_LIVE,
	                            CW_ENTITY_PAUSE_REASON);
	assert_int_equal(cw_entity_pause_decide(config, &absent), CW_ENTITY_PAUSE_KEEP);
	cw_config_free(config);
}

/* A deleted entity is neither paused nor resumed (the file's upsert revives it). */
static void deleted_entity_is_kept(void **state)
{
	(void)state;
	cw_config_t *config = load();
	cw_entity_t gone = stored("items", "shop", CW_ENTITY_ORIGIN_FILE, CW_ENTITY_DELETED, NULL);
	assert_int_equal(cw_entity_pause_decide(config, &gone), CW_ENTITY_PAUSE_KEEP);
	cw_entity_t paused_then_deleted = stored("orders", "shop", CW_ENTITY_ORIGIN_FILE,
	                                         CW_ENTITY_DELETED, CW_ENTITY_PAUSE_REASON);
	assert_int_equal(cw_entity_pause_decide(config, &paused_then_deleted), CW_ENTITY_PAUSE_KEEP);
	cw_config_free(config);
}

/* Users see "paused" for a paused entity; sources capture neither paused nor deleted ones. */
static void shown_status_and_capture(void **state)
{
	(void)state;
	cw_entity_t live = stored("a", "shop", CW_ENTITY_ORIGIN_FILE, CW_ENTITY_LIVE, NULL);
	cw_entity_t paused = stored("b", "shop", CW_ENTITY_ORIGIN_FILE, CW_ENTITY_LIVE, "why");
	cw_entity_t deleted = stored("c", "shop", CW_ENTITY_ORIGIN_FILE, CW_ENTITY_DELETED, "why");
	assert_string_equal(cw_entity_shown_status(&live), "live");
	assert_string_equal(cw_entity_shown_status(&paused), "paused");
	assert_string_equal(cw_entity_shown_status(&deleted), "deleted");
	assert_true(cw_entity_is_captured(&live));
	assert_false(cw_entity_is_captured(&paused));
	assert_false(cw_entity_is_captured(&deleted));
	assert_string_equal(cw_entity_origin_name(CW_ENTITY_ORIGIN_FILE), "file");
	assert_string_equal(cw_entity_origin_name(CW_ENTITY_ORIGIN_API), "api");
	assert_null(cw_entity_origin_name(CW_ENTITY_ORIGIN_UNKNOWN));
	assert_int_equal(cw_entity_origin_parse("api"), CW_ENTITY_ORIGIN_API);
	assert_int_equal(cw_entity_origin_parse(NULL), CW_ENTITY_ORIGIN_UNKNOWN);
	assert_int_equal(cw_entity_origin_parse("elsewhere"), CW_ENTITY_ORIGIN_UNKNOWN);
}

/* A copy keeps the pause and the origin, and owns its reason. */
static void copy_keeps_the_pause(void **state)
{
	(void)state;
	cw_entity_t paused = stored("b", "shop", CW_ENTITY_ORIGIN_FILE, CW_ENTITY_LIVE, "why");
	paused.paused_at_us = 42;
	cw_entity_t copy;
	memset(&copy, 0, sizeof copy);
	cw_entity_copy(&copy, &paused);
	assert_string_equal(copy.paused_reason, "why");
	assert_ptr_not_equal(copy.paused_reason, paused.paused_reason);
	assert_int_equal(copy.paused_at_us, 42);
	assert_int_equal(copy.origin, CW_ENTITY_ORIGIN_FILE);
	cw_entity_clear(&copy);
}

/* The gauge: 1 for a paused entity, 0 for the others (a resumed one drops back to 0). */
static void gauge_counts_paused_entities(void **state)
{
	(void)state;
	cw_metrics_t *metrics = cw_metrics_new();
	cw_entity_t entities[] = {
		stored("a", "shop", CW_ENTITY_ORIGIN_FILE, CW_ENTITY_LIVE, NULL),
		stored("b", "shop", CW_ENTITY_ORIGIN_FILE, CW_ENTITY_LIVE, CW_ENTITY_PAUSE_REASON),
		stored("c", "shop", CW_ENTITY_ORIGIN_FILE, CW_ENTITY_DELETED, CW_ENTITY_PAUSE_REASON),
	};
	cw_entity_pause_publish(metrics, entities, 3);
	const char *name = "cachewarp_entity_paused";
	assert_true(cw_metrics_value(metrics, name, "entity=\"a\",source=\"shop\"") == 0);
	assert_true(cw_metrics_value(metrics, name, "entity=\"b\",source=\"shop\"") == 1);
	assert_true(cw_metrics_value(metrics, name, "entity=\"c\",source=\"shop\"") == 0);
	entities[1].paused_reason = NULL;
	cw_entity_pause_publish(metrics, entities, 3);
	assert_true(cw_metrics_value(metrics, name, "entity=\"b\",source=\"shop\"") == 0);
	cw_buf_t text = CW_BUF_INIT;
	cw_metrics_render(metrics, &text);
	assert_non_null(strstr(cw_buf_cstr(&text), "# TYPE cachewarp_entity_paused gauge"));
	cw_buf_free(&text);
	cw_metrics_free(metrics);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(removed_file_entity_is_paused),
		cmocka_unit_test(listed_entity_is_kept),
		cmocka_unit_test(api_entity_is_never_paused),
		cmocka_unit_test(unknown_origin_is_kept),
		cmocka_unit_test(other_files_source_is_left_alone),
		cmocka_unit_test(paused_entity_resumes_when_listed_again),
		cmocka_unit_test(deleted_entity_is_kept),
		cmocka_unit_test(shown_status_and_capture),
		cmocka_unit_test(copy_keeps_the_pause),
		cmocka_unit_test(gauge_counts_paused_entities),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
