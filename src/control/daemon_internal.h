/*
 * This file contains the state `cachewarp run` shares between daemon.c (the
 * control-plane jobs, signals, start and shutdown), daemon_components.c
 * (sources and targets as jobs) and daemon_reload.c (SIGHUP and
 * config.watch: applying a new configuration file while running).
 *
 * Configurations: every configuration the daemon loaded stays alive until
 * it exits (a source or target borrows the one it was opened with for its
 * whole life; a reload only adds one, and reloads are rare), so nothing is
 * reference-counted.
 *
 * THREAD SAFETY: the main thread starts, reloads and stops; job threads and
 * the API's connection threads read. `lock` guards the component list and
 * the configuration in force (config, loaded_at_us, last_reload*); it is
 * never held while a job is added, removed or run, nor while the job
 * server's mutex is taken (lock order: state lock, then nothing).
 */
#ifndef CW_CONTROL_DAEMON_INTERNAL_H
#define CW_CONTROL_DAEMON_INTERNAL_H

#include "control/api.h"
#include "control/jobs.h"
#include "control/verify_service.h"
#include "core/component.h"
#include "core/config.h"
#include "core/metrics.h"
#include "hub/entity_registry.h"
#include "hub/hub.h"
#include "hub/lease.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

/* A job's own hub connection, opened on first use and again after an error. */
typedef struct job_hub {
	const cw_config_t *config;
	cw_hub_t *hub;
} job_hub_t;

struct daemon_state;

/* A source or target running as a job. */
typedef struct component {
	struct daemon_state *daemon;    /* borrowed: the daemon it runs in */
	char job_name[80];          /* "capture:shop", "apply:local" */
	char dependency[200];       /* "source:shop", "target:local", "target:local@orders" */
	cw_component_ctx_t ctx;     /* ctx.config: the configuration it was opened with */
	const cw_component_ops_t *ops;
	void *self;
	bool is_source;
	bool poller;                /* a source's batch poller (cw_daemon_poller_open) */
	cw_lease_t *lease;          /* one process at a time runs this component */
	bool standby;               /* the lease is held elsewhere; logged once */
	bool started;               /* its job was added */
} component_t;

typedef struct daemon_state {
	pthread_mutex_t lock;
	const cw_config_t *config;  /* guarded by lock: the configuration in force */
	int64_t loaded_at_us;       /* guarded by lock: when config was loaded (wall clock) */
	const char *last_reload;    /* guarded by lock: "applied", "refused", "invalid" or NULL */
	int64_t last_reload_at_us;  /* guarded by lock */
	cw_config_t **reloaded;     /* owned: every configuration a reload loaded, kept until exit */
	size_t nreloaded;
	char last_seen_sha256[65];  /* main thread: the file's content config.watch saw last */
	int64_t next_watch_ms;      /* main thread: when config.watch reads the file next */
	int watch_failures;         /* main thread: reads in a row that failed */
	bool watch_failing;         /* main thread: that was logged */
	const char **entities;      /* the --entity filter, borrowed */
	size_t nentities;
	cw_hub_t *hub;              /* main thread's connection: entities of a reloaded file */
	cw_metrics_t *metrics;
	component_t **components;   /* guarded by lock; each owned */
	size_t ncomponents;
	cw_entity_registry_t *registry;
	job_hub_t refresh_hub;
	job_hub_t retention_hub;
	job_hub_t liveness_hub;
	cw_jobs_t *jobs;
	cw_cancel_t *shutdown;      /* fired by a signal, or when every component gave up */
	/* Every source and target failed past retry.give_up_after, or the hub refused the
	 * credentials: exit 1. Set from job threads. */
	atomic_bool gave_up;
	cw_verify_service_t *verify; /* runs the API starts, and the scheduled health check */
	struct cw_dead_letter_gauge *dead_letter_gauge;
	job_hub_t dead_letter_hub;
} daemon_state_t;

/* The configuration in force (borrowed; lives until the daemon exits). Any thread. */
const cw_config_t *cw_daemon_config(daemon_state_t *state);

/*
 * After a failed job: when the hub refused the credentials, retrying cannot
 * help, so the daemon stops with exit status 1 at once (logged once).
 * Returns rc.
 */
int cw_daemon_check_hub_refused(daemon_state_t *state, int rc, const cw_err_t *err);

/*
 * daemon_components.c. Opens source or target name of config (borrowed
 * until exit) as a component, not yet running: NULL with err filled when
 * its type is not in this build or it cannot be opened.
 */
component_t *cw_daemon_component_open(daemon_state_t *state, const cw_config_t *config,
                                      bool is_source, const char *name, cw_err_t *err);

/*
 * Opens the batch poller of source name (capture/source.h,
 * cw_source_batch_ops_for): job "poll:<name>", lease "poller:<name>". NULL
 * with err. A reload swaps it with its source (cw_daemon_poller_find finds
 * it; cw_daemon_component_find does not).
 */
component_t *cw_daemon_poller_open(daemon_state_t *state, const cw_config_t *config,
                                   const char *name, cw_err_t *err);

/* Adds c's job to the job server (which runs it at once once started) and lists c. */
int cw_daemon_component_start(daemon_state_t *state, component_t *c, cw_err_t *err);

/*
 * Unlists c, removes its job (cancelled and joined within CW_DAEMON_GRACE_MS)
 * and closes it. A job that does not stop in time is logged and c is left
 * allocated (its thread may still use it) until the process exits.
 */
void cw_daemon_component_stop(daemon_state_t *state, component_t *c);

/* Closes a component that is not listed or whose job has returned; NULL is a no-op. */
void cw_daemon_component_close(component_t *c);

/* The listed component of that kind and name, or NULL. Main thread. */
component_t *cw_daemon_component_find(daemon_state_t *state, bool is_source, const char *name);
/* The listed batch poller of source name, or NULL. Main thread. */
component_t *cw_daemon_poller_find(daemon_state_t *state, const char *name);

/* The API's view of the components (cw_api_components_fn). */
size_t cw_daemon_api_components(void *arg, cw_api_component_t *out, size_t cap);

/* daemon_reload.c. Declares the reload metrics and records the configuration at start. */
void cw_daemon_reload_init(daemon_state_t *state);

/* Reloads the configuration file now (SIGHUP); why says what asked, for the log. */
void cw_daemon_reload(daemon_state_t *state, const char *why);

/* With config.watch: reloads when the file's content changed since last seen. Main thread. */
void cw_daemon_watch_poll(daemon_state_t *state);

/* The API's view of the configuration in force (cw_api_config_fn). */
void cw_daemon_api_config(void *arg, cw_api_config_info_t *out);

#endif
