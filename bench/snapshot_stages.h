/*
 * This file declares the pipeline benchmark's per-stage view of a snapshot:
 * cachewarp's own time in each stage of the snapshot,
 * read from the daemon's metrics, next to a bare reference of that stage
 * measured in the same run on the same clusters and rows.
 *
 *   stage          cachewarp (daemon metrics)                 bare reference
 *   source read    cachewarp_snapshot_read_seconds_total      COPY (SELECT * FROM t) TO STDOUT
 *   hub write      cachewarp_capture_write_seconds_total      the oplog's rows COPY'd in batches
 *                                                             into a fresh copy of the oplog table
 *   apply read     cachewarp_apply_read_seconds_total         the apply loop's page query, pages
 *                                                             read and not decoded
 *   SQLite write   cachewarp_apply_batch_duration_seconds     the cache's rows INSERTed into a
 *                  (its _sum)                                 fresh file of the same layout
 *
 * Every figure is microseconds per row of wall-clock time. The daemon's
 * stages overlap and share the machine's cores with each other and with the
 * two clusters; each reference runs alone, after the snapshot.
 */
#ifndef CW_BENCH_SNAPSHOT_STAGES_H
#define CW_BENCH_SNAPSHOT_STAGES_H

typedef struct cw_bench_stages {
	const char *source_url;   /* the source cluster, holding table */
	const char *table;        /* public.<table>, a validated name */
	const char *hub_url;
	const char *cache_path;   /* the cache's db.sqlite, holding table */
	const char *log_path;     /* the daemon's JSON log: where its API listens */
	const char *dir;          /* a directory for scratch files */
	long rows;                /* rows of the snapshot */
	int batch;                /* capture.batch_size and apply.batch_size */
} cw_bench_stages_t;

/*
 * Prints the figure lines of the four stages (workload "snapshot stages")
 * and a Markdown table. Run it once the snapshot is complete and before
 * anything else writes to the source. Errors are printed and skip a figure.
 */
void cw_bench_snapshot_stages(const cw_bench_stages_t *st);

#endif
