/* This file contains the hub schema migrations declared in migrations.h. */
#include "hub/migrations.h"

#include "core/log.h"

#include <assert.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

/*
 * migrations[i] brings the schema to version i + 1. Append only: a released
 * migration is never edited, a change is a new entry. docs/hub.md describes
 * the resulting schema.
 */
static const char *const migrations[] = {
	/* 1: the oplog, its staging area, entities, metadata, consumers, quarantine */
	"CREATE SCHEMA IF NOT EXISTS cachewarp;\n"
	"CREATE TABLE cachewarp.schema_version (\n"
	"	version integer PRIMARY KEY,\n"
	"	applied_at timestamptz NOT NULL DEFAULT now()\n"
	");\n"
	"CREATE TABLE cachewarp.oplog (\n"
	"	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
	"	op text NOT NULL CHECK (op IN ('upsert', 'delete', 'sweep')),\n"
	"	entity text NOT NULL,\n"
	"	doc_id text,\n"
	"	created_at timestamptz NOT NULL DEFAULT now(),\n"
	"	data jsonb,\n"
	"	version integer NOT NULL,\n"
	"	source_pos text,\n"
	"	CONSTRAINT oplog_doc_id_present CHECK ((op = 'sweep') = (doc_id IS NULL)),\n"
	"	CONSTRAINT oplog_data_present CHECK ((op = 'upsert') = (data IS NOT NULL)),\n"
	"	CONSTRAINT oplog_data_object CHECK (data IS NULL OR jsonb_typeof(data) = 'object')\n"
	");\n"
	"CREATE INDEX oplog_entity_id ON cachewarp.oplog (entity, id);\n"
	"CREATE INDEX oplog_created_at ON cachewarp.oplog (created_at);\n"
	"CREATE TABLE cachewarp.oplog_staging (\n"
	"	staged_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
	"	op text NOT NULL CHECK (op IN ('upsert', 'delete', 'sweep')),\n"
	"	entity text NOT NULL,\n"
	"	doc_id text,\n"
	"	created_at timestamptz NOT NULL DEFAULT now(),\n"
	"	data jsonb,\n"
	"	version integer NOT NULL,\n"
	"	source_pos text,\n"
	"	CONSTRAINT oplog_staging_doc_id_present CHECK ((op = 'sweep') = (doc_id IS NULL)),\n"
	"	CONSTRAINT oplog_staging_data_present CHECK ((op = 'upsert') = (data IS NOT NULL)),\n"
	"	CONSTRAINT oplog_staging_data_object\n"
	"		CHECK (data IS NULL OR jsonb_typeof(data) = 'object')\n"
	");\n"
	"CREATE INDEX oplog_staging_entity ON cachewarp.oplog_staging (entity, staged_id);\n"
	"CREATE TABLE cachewarp.entities (\n"
	"	name text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),\n"
	"	source text NOT NULL,\n"
	"	collection text,\n"
	"	tbl text,\n"
	"	columns jsonb NOT NULL DEFAULT '[]',\n"
	"	status text NOT NULL DEFAULT 'pending'\n"
	"		CHECK (status IN ('pending', 'scanning', 'live', 'deleted')),\n"
	"	version integer NOT NULL DEFAULT 1,\n"
	"	created_at timestamptz NOT NULL DEFAULT now(),\n"
	"	updated_at timestamptz NOT NULL DEFAULT now(),\n"
	"	CONSTRAINT entities_one_origin CHECK ((collection IS NULL) <> (tbl IS NULL))\n"
	");\n"
	"CREATE TABLE cachewarp.metadata (\n"
	"	key text PRIMARY KEY,\n"
	"	value jsonb NOT NULL,\n"
	"	updated_at timestamptz NOT NULL DEFAULT now()\n"
	");\n"
	"CREATE TABLE cachewarp.consumers (\n"
	"	name text PRIMARY KEY,\n"
	"	position bigint NOT NULL DEFAULT 0,\n"
	"	last_seen timestamptz NOT NULL DEFAULT now(),\n"
	"	lag_ids bigint NOT NULL DEFAULT 0,\n"
	"	lag_seconds double precision NOT NULL DEFAULT 0\n"
	");\n"
	"CREATE TABLE cachewarp.quarantine (\n"
	"	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
	"	entity text NOT NULL,\n"
	"	doc_id text,\n"
	"	source_pos text,\n"
	"	reason text NOT NULL,\n"
	"	raw text,\n"
	"	created_at timestamptz NOT NULL DEFAULT now()\n"
	");\n"
	"CREATE INDEX quarantine_entity ON cachewarp.quarantine (entity, id);\n",
	/*
	 * 2: created_at (source commit time, close to insertion order) only
	 * serves retention's range delete: a BRIN index does that for a
	 * fraction of a B-tree's cost on every oplog write.
	 */
	"DROP INDEX cachewarp.oplog_created_at;\n"
	"CREATE INDEX oplog_created_at ON cachewarp.oplog USING brin (created_at);\n",
	/*
	 * 3: verify's runs (one row per entity and target compared), and the
	 * origin of a change that no source captured: 'verify' for a repair's
	 * synthetic changes, NULL for captured ones (a nullable column without
	 * default: no rewrite of the oplog).
	 */
	"CREATE TABLE cachewarp.verify_runs (\n"
	"	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
	"	entity text NOT NULL,\n"
	"	target text NOT NULL,\n"
	"	status text NOT NULL\n"
	"		CHECK (status IN ('running', 'equal', 'different', 'failed', 'canceled')),\n"
	"	repair boolean NOT NULL DEFAULT false,\n"
	"	requested_by text NOT NULL DEFAULT 'cli',\n"
	"	started_at timestamptz NOT NULL DEFAULT now(),\n"
	"	finished_at timestamptz,\n"
	"	report jsonb NOT NULL DEFAULT '{}',\n"
	"	error text\n"
	");\n"
	"CREATE INDEX verify_runs_pair ON cachewarp.verify_runs (entity, target, id);\n"
	"ALTER TABLE cachewarp.oplog ADD COLUMN origin text;\n",
	/*
	 * 4: dead letters, the changes a stream (an entity on one target) could
	 * not transform or write within its retry budget (hub/dead_letters.h).
	 */
	"CREATE TABLE cachewarp.dead_letters (\n"
	"	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
	"	target text NOT NULL,\n"
	"	entity text NOT NULL,\n"
	"	doc_id text NOT NULL,\n"
	"	oplog_id bigint NOT NULL,\n"
	"	version integer NOT NULL,\n"
	"	op text NOT NULL CHECK (op IN ('upsert', 'delete')),\n"
	"	data jsonb,\n"
	"	stage text NOT NULL CHECK (stage IN ('transform', 'write')),\n"
	"	error text NOT NULL,\n"
	"	error_code text,\n"
	"	attempts integer NOT NULL DEFAULT 1,\n"
	"	first_failed_at timestamptz NOT NULL DEFAULT now(),\n"
	"	last_failed_at timestamptz NOT NULL DEFAULT now(),\n"
	"	status text NOT NULL DEFAULT 'failed' CHECK (status IN ('failed', 'replay')),\n"
	"	CONSTRAINT dead_letters_data_present CHECK ((op = 'upsert') = (data IS NOT NULL)),\n"
	"	UNIQUE (target, entity, doc_id, oplog_id)\n"
	");\n"
	"CREATE INDEX dead_letters_stream ON cachewarp.dead_letters (target, entity, status, id);\n",
	/*
	 * 5: a checksum of every metadata value (hub/position_check.h), written
	 * with it and checked when a position is read; NULL for the values stored
	 * before, which are accepted once and rewritten with one.
	 */
	"ALTER TABLE cachewarp.metadata ADD COLUMN checksum text;\n",
	/*
	 * 6: the keys the hub holds live for each batch-mode entity, kept by the
	 * poller's oplog writes in the same transaction (hub/oplog_writer.h,
	 * cw_oplog_writer_track_keys); its periodic delete check compares them
	 * with the source table's keys.
	 */
	"CREATE TABLE cachewarp.batch_keys (\n"
	"	entity text NOT NULL,\n"
	"	doc_id text NOT NULL,\n"
	"	PRIMARY KEY (entity, doc_id)\n"
	");\n",
	/*
	 * 7: where an entity was declared (the configuration file or the
	 * API/CLI; NULL for entities stored before, claimed by the file at the
	 * next start that lists them), and whether it is paused: an entity of
	 * the file that the file no longer lists (control/entity_pause.h).
	 */
	"ALTER TABLE cachewarp.entities ADD COLUMN origin text CHECK (origin IN ('file', 'api'));\n"
	"ALTER TABLE cachewarp.entities ADD COLUMN paused_reason text;\n"
	"ALTER TABLE cachewarp.entities ADD COLUMN paused_at timestamptz;\n",
	/*
	 * 8: the data of the oplog and its staging area as text, not jsonb. The
	 * capture writes one valid compact JSON object per upsert already; jsonb
	 * parsed it again on every COPY and printed it again on every read, the
	 * largest share of the hub's write cost (BENCHMARKS.md). The text keeps
	 * the source's key order and number spelling. Converting rewrites both
	 * tables: a row written before keeps the text jsonb printed for it, which
	 * is what every reader got from data::text until now.
	 */
	"ALTER TABLE cachewarp.oplog DROP CONSTRAINT oplog_data_object,\n"
	"	ALTER COLUMN data TYPE text USING data::text;\n"
	"ALTER TABLE cachewarp.oplog_staging DROP CONSTRAINT oplog_staging_data_object,\n"
	"	ALTER COLUMN data TYPE text USING data::text;\n",
	/*
	 * 9: the oplog without its primary key. Every reader of the oplog finds
	 * its rows through (entity, id): a page of every entity merges one range
	 * scan per entity (hub/oplog_reader.c), the last id is the largest of
	 * each entity's last. The B-tree on id was a sixth of each append's WAL
	 * and the capture ran 6-24% faster without it (BENCHMARKS.md). Ids stay
	 * unique: the column is GENERATED ALWAYS AS IDENTITY and drawn under the
	 * oplog lock. Dropping an index rewrites nothing.
	 */
	"ALTER TABLE cachewarp.oplog DROP CONSTRAINT oplog_pkey;\n",
	/*
	 * 10: retention by append marks instead of a BRIN index on created_at.
	 * The BRIN index cost each appended row an index insert (about a tenth
	 * of the append's CPU, BENCHMARKS.md) and only served retention, which
	 * also had to summarize its new ranges before every run. The writer now
	 * records (last id, clock time) at most once a second per writer, under
	 * the oplog lock; retention deletes up to the id of the newest mark older
	 * than its age, through (entity, id). Rows already in the oplog are
	 * covered by one mark made now: they are kept one retention period more.
	 */
	"CREATE TABLE cachewarp.oplog_marks (\n"
	"	id bigint NOT NULL,\n"
	"	at timestamptz NOT NULL\n"
	");\n"
	"CREATE INDEX oplog_marks_at ON cachewarp.oplog_marks (at);\n"
	"WITH RECURSIVE oplog_entities(entity) AS (\n"
	"	SELECT min(entity) FROM cachewarp.oplog UNION ALL\n"
	"	SELECT (SELECT min(o.entity) FROM cachewarp.oplog o WHERE o.entity > n.entity)\n"
	"	FROM oplog_entities n WHERE n.entity IS NOT NULL)\n"
	"INSERT INTO cachewarp.oplog_marks (id, at)\n"
	"SELECT max((SELECT max(o.id) FROM cachewarp.oplog o WHERE o.entity = n.entity)),\n"
	"	clock_timestamp()\n"
	"FROM oplog_entities n WHERE n.entity IS NOT NULL HAVING count(*) > 0;\n"
	"DROP INDEX cachewarp.oplog_created_at;\n",
};

#define NMIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

int cw_hub_schema_target(void)
{
	return NMIGRATIONS;
}

int cw_hub_schema_version(cw_hub_t *hub, int *version, cw_err_t *err)
{
	const char *what = "could not read the hub schema version";
	PGresult *res = cw_hub_exec(hub,
		"SELECT to_regclass('cachewarp.schema_version') IS NOT NULL", 0, NULL, what, err);
	if (res == NULL)
		return CW_EDB;
	int exists = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	*version = 0;
	if (!exists)
		return 0;
	res = cw_hub_exec(hub, "SELECT coalesce(max(version), 0) FROM cachewarp.schema_version",
	                  0, NULL, what, err);
	if (res == NULL)
		return CW_EDB;
	*version = (int)cw_hub_int64(res, 0, 0);
	PQclear(res);
	return 0;
}

static int newer_error(int version, cw_err_t *err)
{
	return cw_err_set(err, CW_ECONFLICT, "hub",
	                  "hub schema version %d is newer than this cachewarp (%d): upgrade cachewarp",
	                  version, NMIGRATIONS);
}

static int advisory_lock(cw_hub_t *hub, int take, cw_err_t *err)
{
	char lock_class[16], lock_id[16];
	snprintf(lock_class, sizeof lock_class, "%d", CW_HUB_LOCK_CLASS);
	snprintf(lock_id, sizeof lock_id, "%d", CW_HUB_LOCK_MIGRATE);
	const char *params[] = {lock_class, lock_id};
	if (take)
		return cw_hub_command(hub, "SELECT pg_advisory_lock($1::int4, $2::int4)", 2, params,
		                      "could not lock the hub for migration", err);
	return cw_hub_command(hub, "SELECT pg_advisory_unlock($1::int4, $2::int4)", 2, params,
	                      "could not unlock the hub after migration", err);
}

/*
 * The tables migration `version` rewrites as a whole, as an array literal
 * (NULL when none): a rewrite holds the table's lock until it commits, so
 * the hub's writers and readers wait for a time that grows with the table.
 */
static const char *rewritten_tables(int version)
{
	return version == 8 ? "{cachewarp.oplog,cachewarp.oplog_staging}" : NULL;
}

/* Says before it starts that a migration rewrites tables, and how large they are. */
static void log_rewrite(cw_hub_t *hub, const char *tables, const char *version_text)
{
	const char *params[] = {tables};
	PGresult *res = cw_hub_exec(hub,
		"SELECT pg_size_pretty(coalesce(sum(pg_total_relation_size(t::regclass)), 0)) "
		"FROM unnest($1::text[]) AS t", 1, params, "could not size the tables", NULL);
	char size[64] = "unknown";
	if (res != NULL) {
		snprintf(size, sizeof size, "%s", PQgetvalue(res, 0, 0));
		PQclear(res);
	}
	cw_log_kv(CW_LOG_INFO, "hub", "hub migration rewrites tables: writers and readers of the "
	          "hub wait until it is done", "version", version_text, "tables", tables,
	          "size", size, NULL);
}

/*
 * Applies migration `version` (1-based) and records it, in one transaction;
 * upgrading is false for a hub being created (nothing to rewrite then).
 */
static int apply_one(cw_hub_t *hub, int version, bool upgrading, cw_err_t *err)
{
	char what[96], version_text[16];
	snprintf(what, sizeof what, "could not apply hub migration %d", version);
	snprintf(version_text, sizeof version_text, "%d", version);
	const char *params[] = {version_text};
	const char *tables = rewritten_tables(version);
	if (tables != NULL && upgrading)
		log_rewrite(hub, tables, version_text);
	int rc = cw_hub_begin(hub, err);
	if (rc != 0)
		return rc;
	/* A script holds several statements, which only the simple protocol accepts. */
	PGresult *res = PQexec(cw_hub_pgconn(hub), migrations[version - 1]);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		cw_hub_result_error(hub, res, what, err);
		PQclear(res);
		rc = CW_EDB;
		goto cleanup;
	}
	PQclear(res);
	rc = cw_hub_command(hub, "INSERT INTO cachewarp.schema_version (version) VALUES ($1::int4)",
	                    1, params, what, err);
	if (rc == 0)
		rc = cw_hub_commit(hub, what, err);
cleanup:
	if (rc != 0)
		cw_hub_rollback(hub);
	return rc;
}

int cw_hub_migrate(cw_hub_t *hub, int *applied, cw_err_t *err)
{
	return cw_hub_migrate_to(hub, NMIGRATIONS, applied, err);
}

int cw_hub_migrate_to(cw_hub_t *hub, int target, int *applied, cw_err_t *err)
{
	assert(target >= 0 && target <= NMIGRATIONS);
	int version = 0;
	int count = 0;
	int rc = advisory_lock(hub, 1, err);
	if (rc != 0)
		return rc;
	rc = cw_hub_schema_version(hub, &version, err);
	if (rc != 0)
		goto cleanup;
	if (version > NMIGRATIONS) {
		rc = newer_error(version, err);
		goto cleanup;
	}
	for (int next = version + 1; next <= target; next++) {
		rc = apply_one(hub, next, version > 0, err);
		if (rc != 0)
			goto cleanup;
		count++;
	}
cleanup:
	if (rc == 0)
		rc = advisory_lock(hub, 0, err);
	else
		advisory_lock(hub, 0, NULL);
	if (applied != NULL)
		*applied = count;
	return rc;
}

int cw_hub_schema_check(cw_hub_t *hub, cw_err_t *err)
{
	int version = 0;
	int rc = cw_hub_schema_version(hub, &version, err);
	if (rc != 0)
		return rc;
	if (version > NMIGRATIONS)
		return newer_error(version, err);
	if (version < NMIGRATIONS)
		return cw_err_set(err, CW_ECONFLICT, "hub",
		                  "hub schema version %d is older than this cachewarp (%d): "
		                  "run cachewarp migrate", version, NMIGRATIONS);
	return 0;
}
