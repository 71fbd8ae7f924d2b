/*
 * Unit tests of the MongoDB target's decisions that no test server can show
 * (apply/mongodb_target_internal.h): which path writes the position (in the
 * batch's transaction or after the bulk write) from the server's handshake,
 * and the log line that says it; what follows a transaction's error by its
 * labels (TransientTransactionError: the transaction again,
 * UnknownTransactionCommitResult: the commit again, a refused write: the
 * batch without a transaction); which errors fail one entity (its stream
 * retries alone) and which the whole target; and
 * the entity selection (targets[].entities / exclude) from the file to the
 * entities it leaves out, with its errors naming file, line and key.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "apply/mongodb_target_internal.h"
#include "apply/stream.h"
#include "core/buf.h"
#include "core/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- which path writes the position ------------------------------------------- */

static bool runs(const char *hello_json)
{
	bson_error_t error;
	bson_t *hello = bson_new_from_json((const uint8_t *)hello_json, -1, &error);
	if (hello == NULL)
		fail_msg("bad test json %s: %s", hello_json, error.message);
	bool yes = mdb_server_runs_transactions(hello);
	bson_destroy(hello);
	return yes;
}

static void test_transactions_from_handshake(void **state)
{
	(void)state;
	/* a replica set member of MongoDB 4.0 or later */
	assert_true(runs("{\"ismaster\": true, \"setName\": \"rs0\", \"maxWireVersion\": 7, "
	                 "\"logicalSessionTimeoutMinutes\": 30}"));
	assert_true(runs("{\"ismaster\": true, \"setName\": \"rs0\", \"maxWireVersion\": 21, "
	                 "\"logicalSessionTimeoutMinutes\": 30}"));
	/* a replica set of 3.6: no transactions */
	assert_false(runs("{\"ismaster\": true, \"setName\": \"rs0\", \"maxWireVersion\": 6, "
	                  "\"logicalSessionTimeoutMinutes\": 30}"));
	/* a mongos of 4.2 or later, not of 4.0 */
	assert_true(runs("{\"ismaster\": true, \"msg\": \"isdbgrid\", \"maxWireVersion\": 8, "
	                 "\"logicalSessionTimeoutMinutes\": 30}"));
	assert_false(runs("{\"ismaster\": true, \"msg\": \"isdbgrid\", \"maxWireVersion\": 7, "
	                  "\"logicalSessionTimeoutMinutes\": 30}"));
	/* a standalone server, however new: no transactions (the test servers' case) */
	assert_false(runs("{\"ismaster\": true, \"maxWireVersion\": 21, "
	                  "\"logicalSessionTimeoutMinutes\": 30}"));
	/* no sessions */
	assert_false(runs("{\"ismaster\": true, \"setName\": \"rs0\", \"maxWireVersion\": 17}"));
	assert_false(runs("{\"ismaster\": true, \"setName\": \"rs0\", \"maxWireVersion\": 17, "
	                  "\"logicalSessionTimeoutMinutes\": null}"));
	/* the wire version as another number type is not trusted */
	assert_false(runs("{\"ismaster\": true, \"setName\": \"rs0\", \"maxWireVersion\": \"17\", "
	                  "\"logicalSessionTimeoutMinutes\": 30}"));
}

static void test_start_log_says_which_path(void **state)
{
	(void)state;
	assert_string_equal(mdb_position_write_mode(true), "in the batch's transaction");
	assert_non_null(strstr(mdb_position_write_mode(false), "after the bulk write"));
	assert_non_null(strstr(mdb_position_write_mode(false), "idempotent"));
}

/* ---- what follows a transaction's error ---------------------------------------- */

static unsigned labels_of(const char *reply_json)
{
	bson_t *reply = bson_new_from_json((const uint8_t *)reply_json, -1, NULL);
	assert_non_null(reply);
	unsigned labels = mdb_error_labels(reply);
	bson_destroy(reply);
	return labels;
}

static void test_error_labels(void **state)
{
	(void)state;
	assert_int_equal(mdb_error_labels(NULL), 0);
	assert_int_equal(labels_of("{\"ok\": 0, \"code\": 112}"), 0);
	assert_int_equal(labels_of("{\"ok\": 0, \"code\": 112, \"errorLabels\": "
	                           "[\"TransientTransactionError\"]}"), MDB_LABEL_TRANSIENT);
	assert_int_equal(labels_of("{\"ok\": 0, \"errorLabels\": "
	                           "[\"UnknownTransactionCommitResult\"]}"), MDB_LABEL_UNKNOWN_COMMIT);
	assert_int_equal(labels_of("{\"errorLabels\": [\"RetryableWriteError\", "
	                           "\"UnknownTransactionCommitResult\", \"TransientTransactionError\"]}"),
	                 MDB_LABEL_TRANSIENT | MDB_LABEL_UNKNOWN_COMMIT);
	assert_int_equal(labels_of("{\"errorLabels\": [\"RetryableWriteError\"]}"), 0);
}

static void test_transaction_next_step(void **state)
{
	(void)state;
	const unsigned T = MDB_LABEL_TRANSIENT, U = MDB_LABEL_UNKNOWN_COMMIT;
	static const struct {
		bool failed, in_commit;
		unsigned labels;
		bool write_errors;
		int attempt;
		mdb_txn_next_t want;
	} cases[] = {
		{false, false, 0, false, 1, MDB_TXN_DONE},
		{false, true, 0, false, 1, MDB_TXN_DONE},
		/* a document refused in the transaction: the batch again without one */
		{false, false, 0, true, 1, MDB_TXN_WITHOUT},
		/* transient: the whole transaction again, until the attempts run out */
		{true, false, 1, false, 1, MDB_TXN_RETRY},
		{true, false, 1, false, MDB_TXN_ATTEMPTS - 1, MDB_TXN_RETRY},
		{true, false, 1, false, MDB_TXN_ATTEMPTS, MDB_TXN_FAIL},
		{true, true, 1, false, 2, MDB_TXN_RETRY},
		/* the commit's outcome unknown: commit again (only a commit can be) */
		{true, true, 2, false, 1, MDB_TXN_RETRY_COMMIT},
		{true, true, 3, false, 1, MDB_TXN_RETRY_COMMIT},
		{true, true, 2, false, MDB_TXN_ATTEMPTS, MDB_TXN_FAIL},
		{true, false, 2, false, 1, MDB_TXN_FAIL},
		/* an error without a label: reported, the batch is written again later */
		{true, false, 0, false, 1, MDB_TXN_FAIL},
		{true, true, 0, false, 1, MDB_TXN_FAIL},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		unsigned labels = (cases[i].labels & 1 ? T : 0) | (cases[i].labels & 2 ? U : 0);
		mdb_txn_next_t got = mdb_txn_next(cases[i].failed, cases[i].in_commit, labels,
		                                  cases[i].write_errors, cases[i].attempt);
		if (got != cases[i].want)
			fail_msg("case %zu: got %d, want %d", i, got, cases[i].want);
	}
}

/* ---- which errors are whose ---------------------------------------------------- */

static void test_error_codes(void **state)
{
	(void)state;
	/* one document's: quarantined */
	assert_true(mdb_error_is_permanent(10334));
	assert_true(mdb_error_is_permanent(52));
	/* the server's state: the batch is written again later */
	static const uint32_t transient[] = {6, 7, 89, 91, 112, 189, 10107, 11600, 11602, 13435};
	for (size_t i = 0; i < sizeof transient / sizeof transient[0]; i++)
		assert_false(mdb_error_is_permanent(transient[i]));
	/* a duplicate key is neither: a newer version is there (skipped) */
	assert_false(mdb_error_is_permanent(11000));
}

/* Whose an error of the target is: the whole target's, or one entity's (its stream retries alone). */
static bool target_wide(int code, const char *server_code)
{
	cw_err_t err = {0};
	cw_err_set(&err, code, "mongodb_target", "some failure");
	if (server_code != NULL)
		cw_err_set_server_code(&err, server_code);
	return cw_stream_error_is_target_wide(&err);
}

static void test_whose_error(void **state)
{
	(void)state;
	/* a collection name the target cannot take: that entity's alone */
	assert_false(target_wide(CW_EENTITY, NULL));
	/* a view (166), an invalid namespace (73), no right to write one collection (13) */
	assert_false(target_wide(CW_EDB, "166"));
	assert_false(target_wide(CW_EDB, "73"));
	assert_false(target_wide(CW_EDB, "13"));
	/* unreachable, not primary, shutting down: the whole target's */
	assert_true(target_wide(CW_EIO, NULL));
	assert_true(target_wide(CW_EDB, "10107"));
	assert_true(target_wide(CW_EDB, "91"));
}

/* ---- the entity selection -------------------------------------------------------- */

#define SELECTION_HEAD                                                                      \
	"hub: {url: \"postgresql://127.0.0.1/app\"}\n"                                          \
	"sources:\n"                                                                            \
	"  - {name: shop, type: mongodb, url: \"mongodb://127.0.0.1\", database: shop}\n"      \
	"  - {name: app, type: postgres, url: \"postgresql://127.0.0.1/app\"}\n"               \
	"entities:\n"                                                                           \
	"  - {name: carts, source: shop, collection: shopping_carts}\n"                        \
	"  - {name: sessions, source: shop, collection: sessions}\n"                           \
	"  - {name: items, source: shop, collection: items}\n"                                 \
	"  - {name: audit_log, source: app, table: public.audit}\n"                            \
	"  - {name: orders, source: app, table: public.orders}\n"                              \
	"  - {name: secret, source: shop, collection: secret, targets: {backup: {exclude: true}}}\n" \
	"targets:\n"                                                                            \
	"  - name: backup\n"                                                                    \
	"    type: mongodb\n"                                                                   \
	"    url: \"mongodb://127.0.0.1\"\n"                                                    \
	"    database: backup\n"

static cw_config_t *load(const char *text, char *const *envp, cw_buf_t *errors)
{
	cw_config_load_opts_t opts = {envp, errors};
	cw_config_t *config = NULL;
	cw_err_t err = {0};
	if (cw_config_load_buffer("cachewarp.yaml", text, strlen(text), &opts, &config, &err) != 0)
		return NULL;
	return config;
}

/* The names of the configured entities the target "backup" leaves out, joined by ",". */
static char *left_out(const cw_config_t *config)
{
	cw_buf_t out = CW_BUF_INIT;
	const cw_target_config_t *target = cw_config_target(config, "backup");
	assert_non_null(target);
	for (size_t i = 0; i < config->nentities; i++)
		if (mdb_entity_left_out(target, config, &config->entities[i]))
			cw_buf_appendf(&out, "%s%s", out.len ? "," : "", config->entities[i].name);
	cw_buf_append_str(&out, "");
	return cw_buf_take(&out);
}

static void expect_left_out(const char *yaml_tail, char *const *envp, const char *want)
{
	char *text = NULL;
	size_t len = strlen(SELECTION_HEAD) + strlen(yaml_tail) + 1;
	text = malloc(len);
	snprintf(text, len, "%s%s", SELECTION_HEAD, yaml_tail);
	cw_buf_t errors = CW_BUF_INIT;
	cw_config_t *config = load(text, envp, &errors);
	if (config == NULL)
		fail_msg("%s: %s", yaml_tail, cw_buf_cstr(&errors));
	char *got = left_out(config);
	if (strcmp(got, want) != 0)
		fail_msg("%s: left out [%s], want [%s]", yaml_tail, got, want);
	free(got);
	cw_config_free(config);
	cw_buf_free(&errors);
	free(text);
}

static void test_selection(void **state)
{
	(void)state;
	/* nothing selected: only the entity excluded by its own setting */
	expect_left_out("", NULL, "secret");
	/* exclude by source collection (seed 003's list), entity name, table or bare table */
	expect_left_out("    exclude: [shopping_carts, sessions]\n", NULL, "carts,sessions,secret");
	expect_left_out("    exclude: [carts, public.orders]\n", NULL, "carts,orders,secret");
	expect_left_out("    exclude: [audit]\n", NULL, "audit_log,secret");
	expect_left_out("    exclude: \"items,audit_log\"\n", NULL, "items,audit_log,secret");
	expect_left_out("    exclude: [nothing_like_it]\n", NULL, "secret");
	/* an explicit list: only those, by entity name */
	expect_left_out("    entities: [items, orders]\n", NULL,
	                "carts,sessions,audit_log,secret");
	expect_left_out("    entities: [items, secret]\n", NULL, "carts,sessions,audit_log,orders,secret");
	/* the environment's text overrides the file's list */
	char *env[] = {(char *)"CACHEWARP_TARGETS_0_EXCLUDE=items,sessions", NULL};
	expect_left_out("    exclude: [carts]\n", env, "sessions,items,secret");
	char *env_entities[] = {(char *)"CACHEWARP_TARGETS_0_ENTITIES=orders", NULL};
	expect_left_out("    entities: [items]\n", env_entities,
	                "carts,sessions,items,audit_log,secret");
}

static void expect_error(const char *yaml_tail, const char *want)
{
	size_t len = strlen(SELECTION_HEAD) + strlen(yaml_tail) + 1;
	char *text = malloc(len);
	snprintf(text, len, "%s%s", SELECTION_HEAD, yaml_tail);
	cw_buf_t errors = CW_BUF_INIT;
	cw_config_t *config = load(text, NULL, &errors);
	if (config != NULL)
		fail_msg("%s: loaded, want the error %s", yaml_tail, want);
	if (strstr(cw_buf_cstr(&errors), want) == NULL)
		fail_msg("%s: errors\n%s\nwant %s", yaml_tail, cw_buf_cstr(&errors), want);
	cw_buf_free(&errors);
	free(text);
}

static void test_selection_errors(void **state)
{
	(void)state;
	/* the file's 17th line holds the target's keys after SELECTION_HEAD's 16 */
	expect_error("    entities: [items]\n    exclude: [sessions]\n",
	             "cachewarp.yaml:18:14: key \"targets[0].exclude\": set either entities");
	expect_error("    entities: [items, Bad-Name]\n",
	             "cachewarp.yaml:17:23: key \"targets[0].entities\": invalid value \"Bad-Name\"");
	expect_error("    exclude: [items, \"\"]\n",
	             "cachewarp.yaml:17:22: key \"targets[0].exclude\": invalid value: an empty item");
	expect_error("    exclude: [items, [nested]]\n",
	             "key \"targets[0].exclude\": wrong type: expected a list of words");
	expect_error("    exclude: [items, {a: 1}]\n",
	             "key \"targets[0].exclude\": wrong type: expected a list of words");
	expect_error("    exclude: [\"a,b\"]\n", "one item holds a comma");
	expect_error("    exclude: {a: 1}\n", "key \"targets[0].exclude\": wrong type: expected a list");
	/* only a mongodb target selects entities this way */
	cw_buf_t errors = CW_BUF_INIT;
	const char *sqlite = "hub: {url: \"postgresql://127.0.0.1/app\"}\n"
	                     "targets:\n"
	                     "  - {name: local, type: sqlite, dir: /tmp, exclude: [items]}\n";
	assert_null(load(sqlite, NULL, &errors));
	if (strstr(cw_buf_cstr(&errors), "cachewarp.yaml:3:") == NULL ||
	    strstr(cw_buf_cstr(&errors), "targets[0].exclude") == NULL ||
	    strstr(cw_buf_cstr(&errors), "mongodb") == NULL)
		fail_msg("exclude on a sqlite target: %s", cw_buf_cstr(&errors));
	cw_buf_free(&errors);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transactions_from_handshake),
		cmocka_unit_test(test_start_log_says_which_path),
		cmocka_unit_test(test_error_labels),
		cmocka_unit_test(test_transaction_next_step),
		cmocka_unit_test(test_error_codes),
		cmocka_unit_test(test_whose_error),
		cmocka_unit_test(test_selection),
		cmocka_unit_test(test_selection_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
