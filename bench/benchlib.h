/*
 * This file declares what every benchmark in bench/ shares: the figure lines
 * bench/run.sh gathers into one table, the clock, process memory, settings
 * from the environment, a reproducible random sequence, the shared row
 * loader (bench/sql/rows_*.sql), a source or target running on a thread of
 * the benchmark's process and the timing of its catch-up, the source cluster
 * and the hub (a scratch one, or set up from a benchmark's config).
 */
#ifndef CW_BENCH_BENCHLIB_H
#define CW_BENCH_BENCHLIB_H

#include "apply/target.h"
#include "capture/source.h"
#include "core/change.h"
#include "core/config.h"
#include "hub/hub.h"
#include "testsrv.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Prints one measured figure as a line bench/run.sh collects:
 *   figure<TAB>workload<TAB>name<TAB>unit<TAB>value<TAB>reference
 * reference is "workload/name" of the figure this one is compared with
 * (measured in the same `make bench`), or NULL. run.sh runs every benchmark
 * at least three times and prints min / median / max per figure, the
 * reference's median and the ratio of the medians.
 */
void cw_bench_figure(const char *workload, const char *name, const char *unit, double value,
                     const char *reference);

/* The seed every benchmark's random sequence starts from (cw_bench_next_random). */
#define CW_BENCH_RANDOM_SEED 88172645463325252ULL

/* The next number of the splitmix64 sequence in *state (start it at CW_BENCH_RANDOM_SEED). */
uint64_t cw_bench_next_random(uint64_t *state);

/* One write of a benchmark's workload: document doc at step k. */
typedef struct cw_bench_step {
	uint64_t doc, k;
} cw_bench_step_t;

/*
 * The writes an apply batch makes of steps first .. first + n - 1 of a
 * workload whose step i writes document docs[i]: one per document, its last
 * step (numbered step_base + i), in document order, as the target coalesces
 * them. Fills steps (room for n) and returns how many it kept.
 */
size_t cw_bench_last_steps(const uint64_t *docs, uint64_t first, size_t n, uint64_t step_base,
                           cw_bench_step_t *steps);

/*
 * Appends to batch an upsert of doc_id in entity with data (borrowed: the
 * batch owns copies) at version 1, with oplog_id (0: not written yet) and
 * created_at_us (0: unknown).
 */
void cw_bench_push_upsert(cw_change_batch_t *batch, const char *entity, const char *doc_id,
                          const char *data, int64_t oplog_id, int64_t created_at_us);

/* Seconds on the monotonic clock. */
double cw_bench_now_s(void);

/* Microseconds since the Unix epoch on the wall clock (what a stamp in a row holds). */
int64_t cw_bench_wall_us(void);

/* The integer in environment variable name, or fallback when unset or outside [min, max]. */
long cw_bench_env_long(const char *name, long fallback, long min, long max);

/* Peak resident set size (VmHWM) of pid (0: this process) in KiB, or -1. */
long cw_bench_peak_rss_kib(pid_t pid);

/* Restarts the peak RSS of pid (0: this process) from its current RSS. */
void cw_bench_reset_peak_rss(pid_t pid);

/* User + system CPU seconds pid (0: this process) has used so far, or -1. */
double cw_bench_cpu_s(pid_t pid);

/*
 * CPU seconds of the PostgreSQL cluster in data_dir so far: its postmaster,
 * the children it reaped (backends that exited) and its live children
 * (backends, walwriter, autovacuum); -1 when it is not running or data_dir
 * is "" (a cluster the benchmark did not start).
 */
double cw_bench_cluster_cpu_s(const char *data_dir);

/*
 * CHECKPOINT on conn's cluster, after a loader and before a timed phase: the
 * loader's dirty pages are written out then, not by the checkpointer and
 * the backends during the phase, where on two cores they took CPU from
 * whatever was being measured (BENCHMARKS.md, "The loader's write-back").
 * Best effort: a role that may not checkpoint gets a message and the phase
 * runs anyway.
 */
void cw_bench_checkpoint(PGconn *conn);

/* Runs sql (one or more statements); 0, or -1 with a message naming what. */
int cw_bench_exec(PGconn *conn, const char *sql, const char *what);

/* The first value of a one-row query (owned), or NULL with a message. */
char *cw_bench_query_value(PGconn *conn, const char *sql);

/* Runs a COPY ... TO STDOUT, writing its data to out (NULL: discarded); 0 or -1. */
int cw_bench_copy_out(PGconn *conn, const char *sql, FILE *out);

/*
 * The hub's own ceiling for rows cachewarp wrote: the oplog rows matching
 * where (an SQL condition on cachewarp.oplog, built from trusted values)
 * COPY'd out, in id order, to a scratch file in dir, then COPY'd into a
 * fresh copy of the oplog table (LIKE cachewarp.oplog INCLUDING ALL: the
 * same columns, constraints and indexes) in transactions of batch rows, as
 * the capture commits them. Returns the seconds of the second part and sets
 * *rows to the rows copied, or -1 with a message.
 */
double cw_bench_hub_copy(const char *hub_url, const char *where, int batch, const char *dir,
                         long *rows);

/*
 * Runs the shared loader bench/sql/<sql_file> (rows_schema.sql,
 * rows_insert.sql, rows_update.sql) with cw_bench.rows = rows; 0 or -1.
 */
int cw_bench_load(PGconn *conn, const char *sql_file, long rows);

/*
 * Waits until entity (a validated name) is live in the hub on hub, its
 * initial snapshot or scan done; 0, or -1 with a message after timeout_s.
 */
int cw_bench_wait_live(PGconn *hub, const char *entity, double timeout_s);

/*
 * A source (cw_source_ops_for) or a target (cw_target_ops_for) running in
 * this process on its own thread, as the job server runs it: after an error
 * (printed on stderr) it runs again 200 ms later, until paused or stopped.
 * The caller fills ops and ctx (borrowed until _stop) and reads ctx.metrics
 * while it runs.
 */
typedef struct cw_bench_component {
	const cw_component_ops_t *ops;
	cw_component_ctx_t ctx;
	void *self;            /* owned from _start to _stop; NULL when not open */
	cw_cancel_t *cancel;   /* NULL while paused */
	pthread_t thread;
} cw_bench_component_t;

/* Opens the component and starts its thread; 0, or -1 with a message and nothing running. */
int cw_bench_component_start(cw_bench_component_t *c);

/* Cancels its run and joins the thread, keeping it open; a no-op when paused. */
void cw_bench_component_pause(cw_bench_component_t *c);

/* Starts the thread of an open, paused component again; 0 or -1 with a message. */
int cw_bench_component_resume(cw_bench_component_t *c);

/* Pauses and closes it; a no-op when it is not open. */
void cw_bench_component_stop(cw_bench_component_t *c);

/* The position its status reports, as an oplog id (a target's). */
int64_t cw_bench_component_position(cw_bench_component_t *c);

/* Polls every 2 ms until that position reaches head; the seconds it took. */
double cw_bench_component_wait_position(cw_bench_component_t *c, int64_t head);

/* The changes-captured counter of source c in series (cachewarp_changes_captured_total{series}). */
double cw_bench_captured(const cw_bench_component_t *c, const char *series);

/* What one timed run of a component measured in this process. */
typedef struct cw_bench_run {
	double seconds;        /* wall clock, from the component's start */
	double cpu_s;          /* user + system CPU of this process */
	long peak_rss_kib;     /* peak RSS of this process, restarted before the run */
} cw_bench_run_t;

/*
 * Times one catch-up of a stopped source c: restarts this process's peak
 * RSS, starts c and polls every 2 ms until its changes-captured counter in
 * series (cachewarp_changes_captured_total{series}) has grown by want, then
 * fills *run. c keeps running. 0, or -1 (c may be running) with the message
 * "bench: <got> of <want> <what> after <timeout_s> s" after timeout_s.
 */
int cw_bench_capture_run(cw_bench_component_t *c, const char *series, double want,
                         const char *what, double timeout_s, cw_bench_run_t *run);

/*
 * Prints the figures of a run that moved rows under workload: "rows/s"
 * (compared with rows_reference), "CPU per 1M rows" and "peak RSS" (compared
 * with rss_reference); either reference may be NULL.
 */
void cw_bench_figure_rows(const char *workload, long rows, const cw_bench_run_t *run,
                          const char *rows_reference, const char *rss_reference);

/*
 * Prints the figures that compare a target (its kind: "MongoDB",
 * "PostgreSQL") with its bare reference over the same changes: upserts and
 * random updates per second of "<kind> target reference", then of
 * "hub to <kind> target", each compared with the reference's. The
 * arguments are the seconds each phase took.
 */
void cw_bench_figure_target(const char *kind, uint64_t changes, double ref_insert_s,
                            double ref_update_s, double insert_s, double update_s);

/*
 * Loads yaml (a config with the target "bench") and fills *target as that
 * target of type, not started, with a fresh metrics registry (owned by the
 * caller: cw_metrics_free(target->ctx.metrics)). Returns the config the
 * target borrows (owned: cw_config_free after the target stops), or NULL
 * with a message and nothing allocated.
 */
cw_config_t *cw_bench_target_init(cw_bench_component_t *target, cw_target_type_t type,
                                  const char *yaml);

/*
 * Starts a throwaway PostgreSQL cluster in *pg and returns a hub connected
 * to it and migrated to the newest schema (owned: cw_hub_close, then
 * cw_testpg_stop(pg)), or NULL with a message and nothing running.
 */
cw_hub_t *cw_bench_scratch_hub(cw_testsrv_t *pg);

/*
 * Connects to the PostgreSQL cluster a source benchmark captures from:
 * CW_BENCH_PG_URL when set, else a throwaway PostgreSQL 15 cluster started
 * in *srv (zeroed by the caller; cw_testpg_stop(srv) stops it, a no-op when
 * none was started). Returns the connection (owned: PQfinish) and sets *url
 * (borrowed from the environment or *srv), or NULL with a message and
 * nothing running.
 */
PGconn *cw_bench_pg_source(cw_testsrv_t *srv, const char **url);

/*
 * Loads yaml (a benchmark's config, into *config: owned by the caller,
 * cw_config_free, NULL when it did not load), connects the hub at hub_url,
 * migrates it and registers every entity of the config. Returns the hub
 * (owned: cw_hub_close), or NULL with a message.
 */
cw_hub_t *cw_bench_hub_setup(const char *hub_url, const char *yaml, cw_config_t **config);

/*
 * Registers in hub the live entity "bench" of the MongoDB source "src"
 * (collection "bench") that the target benchmarks append, with
 * columns[0..ncolumns) (borrowed; NULL, 0: the whole document as "doc");
 * 0, or -1 with a message.
 */
int cw_bench_entity_register(cw_hub_t *hub, cw_column_t *columns, size_t ncolumns);

/* Where a benchmark's hub lives (cw_bench_hub_open). */
typedef struct cw_bench_hub {
	cw_testsrv_t cluster;   /* a throwaway cluster of its own, or zeroed */
	char *source_url;       /* the cluster holding the hub database instead, or NULL */
	char database[64];
	char *url;              /* owned: the hub's URL */
} cw_bench_hub_t;

/*
 * Opens a hub for a benchmark whose source is at source_url: by default a
 * throwaway PostgreSQL cluster of its own, as a production hub would be, so
 * the source's walsender never decodes the hub's WAL; with
 * CW_BENCH_HUB=same, a database of the source's cluster (what `make demo`
 * does). 0, or -1 with a message. The hub is empty (no schema yet).
 */
int cw_bench_hub_open(cw_bench_hub_t *hub, const char *source_url);

/* Drops the hub database or stops the hub's cluster. */
void cw_bench_hub_close(cw_bench_hub_t *hub);

#endif
