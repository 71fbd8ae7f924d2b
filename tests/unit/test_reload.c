/*
 * Unit tests of the reload plan: which sources, targets and entities a new
 * configuration file adds, removes or restarts, and which keys refuse it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "control/reload.h"
#include "core/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Two sources, two targets, two entities: the running configuration. */
static const char base_text[] =
	"hub: {url: \"postgresql://127.0.0.1/hub\"}\n"
	"api: {listen: \"127.0.0.1:0\"}\n"
	"log: {level: info}\n"
	"authentication:\n"
	"  - {id: shop_login, type: username_password, config: {username: cw, password: one}}\n"
	"sources:\n"
	"  - {name: shop, type: postgres, url: \"postgresql://127.0.0.1/shop\", auth_id: shop_login}\n"
	"  - {name: docs, type: mongodb, url: \"mongodb://127.0.0.1/\", database: app}\n"
	"entities:\n"
	"  - name: orders\n"
	"    source: shop\n"
	"    table: public.orders\n"
	"  - name: notes\n"
	"    source: docs\n"
	"    collection: notes\n"
	"    targets: {backup: {collection: notes_copy}}\n"
	"targets:\n"
	"  - {name: local, type: sqlite, dir: /tmp/cw-local}\n"
	"  - {name: backup, type: mongodb, url: \"mongodb://127.0.0.1/\", database: copy}\n";

/* base with the first occurrence of from replaced by to (owned). */
static char *edit_of(const char *base, const char *from, const char *to)
{
	const char *at = strstr(base, from);
	assert_non_null(at);
	size_t head = (size_t)(at - base);
	size_t len = strlen(base) + strlen(to) + 1;
	char *text = cw_xmalloc(len);
	snprintf(text, len, "%.*s%s%s", (int)head, base, to, at + strlen(from));
	return text;
}

static cw_config_t *load(const char *text)
{
	cw_buf_t errors = CW_BUF_INIT;
	cw_config_load_opts_t opts = {NULL, &errors};
	cw_config_t *config = NULL;
	cw_err_t err = {0};
	if (cw_config_load_buffer("/etc/cachewarp/cachewarp.yaml", text, strlen(text), &opts,
	                          &config, &err) != 0)
		fail_msg("config does not load:\n%s", cw_buf_cstr(&errors));
	cw_buf_free(&errors);
	return config;
}

typedef struct pair {
	cw_config_t *running;
	cw_config_t *next;
	cw_reload_plan_t *plan;
} pair_t;

/* The plan from base to base with from replaced by to. */
static pair_t plan_edit_of(const char *base, const char *from, const char *to)
{
	char *text = edit_of(base, from, to);
	pair_t p = {load(base), load(text), NULL};
	free(text);
	p.plan = cw_reload_plan_new(p.running, p.next);
	return p;
}

static pair_t plan_edit(const char *from, const char *to)
{
	return plan_edit_of(base_text, from, to);
}

static void pair_free(pair_t *p)
{
	cw_reload_plan_free(p->plan);
	cw_config_free(p->next);
	cw_config_free(p->running);
}

static cw_reload_change_t source_change(const pair_t *p, const char *name)
{
	return cw_reload_change_of(p->plan->sources, p->plan->nsources, name);
}

static cw_reload_change_t target_change(const pair_t *p, const char *name)
{
	return cw_reload_change_of(p->plan->targets, p->plan->ntargets, name);
}

static cw_reload_change_t entity_change(const pair_t *p, const char *name)
{
	return cw_reload_change_of(p->plan->entities, p->plan->nentities, name);
}

static void the_same_file_changes_nothing(void **state)
{
	(void)state;
	pair_t p = plan_edit("info", "info");
	assert_int_equal(p.plan->nrefusals, 0);
	assert_true(cw_reload_plan_empty(p.plan));
	assert_int_equal(p.plan->nsources, 2);
	assert_int_equal(p.plan->ntargets, 2);
	assert_int_equal(p.plan->nentities, 2);
	pair_free(&p);
}

/* Keys read only at start refuse the reload, each named in its own message. */
static void keys_read_at_start_refuse_the_reload(void **state)
{
	(void)state;
	static const struct {
		const char *from, *to, *message;
	} cases[] = {
		{"127.0.0.1/hub", "127.0.0.2/hub", "hub.url changed: restart cachewarp to apply it"},
		{"127.0.0.1:0", "127.0.0.1:9", "api.listen changed: restart cachewarp to apply it"},
		{"log: {level: info}", "log: {level: info, format: text}",
		 "log.format changed: restart cachewarp to apply it"},
		{"api: {", "capture: {queue_depth: 9}\napi: {",
		 "capture.queue_depth changed: restart cachewarp to apply it"},
		{"api: {", "api: {token: s3cret, ", "api.token changed: restart cachewarp to apply it"},
		{"api: {", "api: {max_body: 2MiB, ", "api.max_body changed: restart cachewarp to apply it"},
		{"api: {", "retry: {initial: 2s}\napi: {",
		 "retry.initial changed: restart cachewarp to apply it"},
		{"api: {", "verify: {interval: 1h}\napi: {",
		 "verify.interval changed: restart cachewarp to apply it"},
		{"hub\"}", "hub\", auth_id: shop_login}",
		 "hub.auth_id changed: restart cachewarp to apply it"},
		{"    table: public.orders", "    table: public.orders2",
		 "entity \"orders\": its shape (source, table or collection, columns) changed: shapes "
		 "are immutable, add an entity under a new name"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		pair_t p = plan_edit(cases[i].from, cases[i].to);
		if (p.plan->nrefusals != 1 || strcmp(p.plan->refusals[0], cases[i].message) != 0)
			fail_msg("case %zu: %zu refusals, first \"%s\"; want \"%s\"", i, p.plan->nrefusals,
			         p.plan->nrefusals ? p.plan->refusals[0] : "", cases[i].message);
		pair_free(&p);
	}
}

static void the_hubs_credentials_refuse_the_reload(void **state)
{
	(void)state;
	char *with_hub_auth = NULL;
	{
		const char *at = strstr(base_text, "hub\"}");
		size_t head = (size_t)(at - base_text);
		size_t len = sizeof base_text + 32;
		with_hub_auth = cw_xmalloc(len);
		snprintf(with_hub_auth, len, "%.*shub\", auth_id: shop_login}%s", (int)head, base_text,
		         at + strlen("hub\"}"));
	}
	char *changed = cw_xstrdup(with_hub_auth);
	char *password = strstr(changed, "password: one");
	memcpy(password, "password: two", strlen("password: two"));
	cw_config_t *running = load(with_hub_auth), *next = load(changed);
	cw_reload_plan_t *plan = cw_reload_plan_new(running, next);
	assert_int_equal(plan->nrefusals, 1);
	assert_string_equal(plan->refusals[0], "authentication \"shop_login\" (the hub's "
	                    "credentials) changed: restart cachewarp to apply it");
	cw_reload_plan_free(plan);
	cw_config_free(next);
	cw_config_free(running);
	free(changed);
	free(with_hub_auth);
}

static void live_keys_restart_nothing(void **state)
{
	(void)state;
	pair_t p = plan_edit("log: {level: info}",
	                     "log: {level: debug}\nconfig: {watch: true, watch_interval: 1s}\n"
	                     "verify: {window: \"02:00-05:00\", repair: true}");
	assert_int_equal(p.plan->nrefusals, 0);
	assert_int_equal(p.plan->nlive_keys, 5);
	assert_string_equal(p.plan->live_keys[0], "log.level");
	assert_int_equal(source_change(&p, "shop"), CW_RELOAD_UNCHANGED);
	assert_int_equal(target_change(&p, "local"), CW_RELOAD_UNCHANGED);
	assert_false(cw_reload_plan_empty(p.plan));
	pair_free(&p);
}

/* A changed setting restarts that target only. */
static void a_changed_target_restarts_alone(void **state)
{
	(void)state;
	pair_t p = plan_edit("dir: /tmp/cw-local}", "dir: /tmp/cw-local, idle_timeout: 7s}");
	assert_int_equal(p.plan->nrefusals, 0);
	assert_int_equal(target_change(&p, "local"), CW_RELOAD_CHANGED);
	assert_int_equal(target_change(&p, "backup"), CW_RELOAD_UNCHANGED);
	assert_int_equal(source_change(&p, "shop"), CW_RELOAD_UNCHANGED);
	assert_int_equal(source_change(&p, "docs"), CW_RELOAD_UNCHANGED);
	cw_buf_t list = CW_BUF_INIT;
	cw_reload_list(p.plan->targets, p.plan->ntargets, "target", CW_RELOAD_CHANGED, &list);
	assert_string_equal(cw_buf_cstr(&list), "target:local");
	cw_buf_free(&list);
	pair_free(&p);
}

static void added_and_removed_components_and_entities(void **state)
{
	(void)state;
	pair_t p = plan_edit("  - {name: local, type: sqlite, dir: /tmp/cw-local}\n",
	                     "  - {name: second, type: sqlite, dir: /tmp/cw-second}\n");
	assert_int_equal(p.plan->nrefusals, 0);
	assert_int_equal(target_change(&p, "local"), CW_RELOAD_REMOVED);
	assert_int_equal(target_change(&p, "second"), CW_RELOAD_ADDED);
	assert_int_equal(target_change(&p, "backup"), CW_RELOAD_UNCHANGED);
	pair_free(&p);

	p = plan_edit("entities:\n", "entities:\n  - {name: items, source: shop, table: items}\n");
	assert_int_equal(p.plan->nrefusals, 0);
	assert_int_equal(entity_change(&p, "items"), CW_RELOAD_ADDED);
	assert_int_equal(entity_change(&p, "orders"), CW_RELOAD_UNCHANGED);
	assert_int_equal(source_change(&p, "shop"), CW_RELOAD_UNCHANGED);
	assert_int_equal(target_change(&p, "local"), CW_RELOAD_UNCHANGED);
	pair_free(&p);

	p = plan_edit("  - name: orders\n    source: shop\n    table: public.orders\n", "");
	assert_int_equal(entity_change(&p, "orders"), CW_RELOAD_REMOVED);
	assert_int_equal(source_change(&p, "shop"), CW_RELOAD_UNCHANGED);
	pair_free(&p);

	p = plan_edit("sources:\n", "sources:\n  - {name: more, type: postgres, url: \"postgresql://h/m\"}\n");
	assert_int_equal(source_change(&p, "more"), CW_RELOAD_ADDED);
	assert_int_equal(source_change(&p, "shop"), CW_RELOAD_UNCHANGED);
	pair_free(&p);
}

/* Settings a component reads from elsewhere in the file restart it too. */
static void settings_read_from_elsewhere_restart_their_component(void **state)
{
	(void)state;
	pair_t p = plan_edit("password: one", "password: two");       /* shop's auth_id */
	assert_int_equal(p.plan->nrefusals, 0);
	assert_int_equal(source_change(&p, "shop"), CW_RELOAD_CHANGED);
	assert_int_equal(source_change(&p, "docs"), CW_RELOAD_UNCHANGED);
	pair_free(&p);

	p = plan_edit("collection: notes_copy", "collection: notes_other");
	assert_int_equal(p.plan->nrefusals, 0);
	assert_int_equal(entity_change(&p, "notes"), CW_RELOAD_CHANGED);
	assert_int_equal(target_change(&p, "backup"), CW_RELOAD_CHANGED);
	assert_int_equal(target_change(&p, "local"), CW_RELOAD_UNCHANGED);
	pair_free(&p);

	p = plan_edit("api: {", "capture: {batch_size: 10}\napi: {");
	assert_int_equal(p.plan->nrefusals, 0);
	assert_int_equal(source_change(&p, "shop"), CW_RELOAD_CHANGED);
	assert_int_equal(source_change(&p, "docs"), CW_RELOAD_CHANGED);
	assert_int_equal(target_change(&p, "local"), CW_RELOAD_UNCHANGED);
	pair_free(&p);

	p = plan_edit("api: {", "apply: {batch_size: 10}\napi: {");
	assert_int_equal(source_change(&p, "shop"), CW_RELOAD_UNCHANGED);
	assert_int_equal(target_change(&p, "local"), CW_RELOAD_CHANGED);
	assert_int_equal(target_change(&p, "backup"), CW_RELOAD_CHANGED);
	pair_free(&p);
}

/* A target restarts when one of its streams or a transformation a stream names changes. */
static void streams_and_their_transformations_restart_their_target(void **state)
{
	(void)state;
	char *with_stream = edit_of(base_text, "  - {name: local, type: sqlite, dir: /tmp/cw-local}\n",
	                            "  - name: local\n"
	                            "    type: sqlite\n"
	                            "    dir: /tmp/cw-local\n"
	                            "    streams:\n"
	                            "      - {entity: orders, transformation_id: flat, batch_size: 10}\n");
	char *with_streams = edit_of(with_stream, "database: copy}\n",
	                             "database: copy}\n"
	                             "transformations:\n"
	                             "  - {id: flat, spec: \"[]\"}\n"
	                             "  - {id: unused, spec: \"[]\"}\n");
	free(with_stream);
	pair_t p = plan_edit_of(with_streams, "{id: flat, spec: \"[]\"}",
	                        "{id: flat, spec: \"[{\\\"operation\\\": \\\"pass\\\"}]\"}");
	assert_int_equal(p.plan->nrefusals, 0);
	assert_int_equal(target_change(&p, "local"), CW_RELOAD_CHANGED);
	assert_int_equal(target_change(&p, "backup"), CW_RELOAD_UNCHANGED);
	pair_free(&p);

	p = plan_edit_of(with_streams, "{id: unused, spec: \"[]\"}",
	                 "{id: unused, spec: \"[{\\\"operation\\\": \\\"pass\\\"}]\"}");
	assert_true(cw_reload_plan_empty(p.plan));
	pair_free(&p);

	p = plan_edit_of(with_streams, "batch_size: 10", "batch_size: 20");
	assert_int_equal(target_change(&p, "local"), CW_RELOAD_CHANGED);
	assert_int_equal(target_change(&p, "backup"), CW_RELOAD_UNCHANGED);
	assert_int_equal(source_change(&p, "shop"), CW_RELOAD_UNCHANGED);
	pair_free(&p);
	free(with_streams);
}

/* Batch mode's keys: the entity's source restarts (its stream and its poller), nothing else. */
static void batch_settings_restart_their_source(void **state)
{
	(void)state;
	static const char *const edits[][2] = {
		{"    table: public.orders\n", "    table: public.orders\n    mode: batch\n"},
		{"    table: public.orders\n", "    table: public.orders\n    polling_interval: 5s\n"},
		{"    table: public.orders\n",
		 "    table: public.orders\n    change_detection: {column: changed_at}\n"},
		{"    table: public.orders\n",
		 "    table: public.orders\n    delete_detection: {interval: 0}\n"},
	};
	for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
		pair_t p = plan_edit(edits[i][0], edits[i][1]);
		assert_int_equal(p.plan->nrefusals, 0);
		assert_int_equal(source_change(&p, "shop"), CW_RELOAD_CHANGED);
		assert_int_equal(source_change(&p, "docs"), CW_RELOAD_UNCHANGED);
		assert_int_equal(target_change(&p, "local"), CW_RELOAD_UNCHANGED);
		assert_int_equal(entity_change(&p, "orders"), CW_RELOAD_UNCHANGED);
		pair_free(&p);
	}
	/* A batch entity added or removed restarts its source; a streamed one does not. */
	char *added = edit_of(base_text, "entities:\n", "entities:\n  - {name: lines, source: shop, "
	                      "table: public.lines, mode: batch}\n");
	pair_t q = {load(base_text), load(added), NULL};
	q.plan = cw_reload_plan_new(q.running, q.next);
	assert_int_equal(entity_change(&q, "lines"), CW_RELOAD_ADDED);
	assert_int_equal(source_change(&q, "shop"), CW_RELOAD_CHANGED);
	pair_free(&q);
	q = (pair_t){load(added), load(base_text), NULL};
	q.plan = cw_reload_plan_new(q.running, q.next);
	assert_int_equal(entity_change(&q, "lines"), CW_RELOAD_REMOVED);
	assert_int_equal(source_change(&q, "shop"), CW_RELOAD_CHANGED);
	pair_free(&q);
	free(added);
	pair_t p = plan_edit("entities:\n", "entities:\n  - {name: lines, source: shop, "
	              "table: public.lines}\n");
	assert_int_equal(entity_change(&p, "lines"), CW_RELOAD_ADDED);
	assert_int_equal(source_change(&p, "shop"), CW_RELOAD_UNCHANGED);
	pair_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(the_same_file_changes_nothing),
		cmocka_unit_test(keys_read_at_start_refuse_the_reload),
		cmocka_unit_test(the_hubs_credentials_refuse_the_reload),
		cmocka_unit_test(live_keys_restart_nothing),
		cmocka_unit_test(a_changed_target_restarts_alone),
		cmocka_unit_test(added_and_removed_components_and_entities),
		cmocka_unit_test(settings_read_from_elsewhere_restart_their_component),
		cmocka_unit_test(streams_and_their_transformations_restart_their_target),
		cmocka_unit_test(batch_settings_restart_their_source),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
