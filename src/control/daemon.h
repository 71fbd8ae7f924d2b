/*
 * This file contains `cachewarp run`: the long-running process. It reaches
 * the hub (retrying), migrates it, stores the configuration file's entities,
 * starts the job server with the control plane's jobs (entity refresh, oplog
 * retention, consumer liveness) and runs until SIGTERM or SIGINT, then stops
 * every component within a bounded grace period. A second SIGINT exits at once.
 * SIGHUP (and, with config.watch, a change of the file) reloads the
 * configuration file (control/reload.h, docs/operations.md).
 */
#ifndef CW_CONTROL_DAEMON_H
#define CW_CONTROL_DAEMON_H

#include "core/config.h"

#include <stddef.h>

/* Grace period each component gets to stop on shutdown. */
#define CW_DAEMON_GRACE_MS 10000

/* Intervals of the control plane's jobs. */
#define CW_DAEMON_ENTITY_REFRESH_MS 1000   /* the registry the targets read */
#define CW_DAEMON_RETENTION_MS 60000
#define CW_DAEMON_LIVENESS_MS 30000
#define CW_DAEMON_GIVE_UP_CHECK_MS 1000
#define CW_DAEMON_DEAD_LETTER_GAUGE_MS 5000   /* cachewarp_dead_letters from the hub */
/* How often the main thread looks for SIGHUP and config.watch's next read. */
#define CW_DAEMON_SIGNAL_POLL_MS 200
/* A consumer not seen for this long is reported stale and no longer holds back retention. */
#define CW_DAEMON_CONSUMER_LIVENESS_S 600

/*
 * Runs the daemon on config (borrowed; loaded from config->path with the
 * process environment, which a reload reads again); entities (may be NULL) limits
 * capture and apply. Returns an exit code; when the daemon could not start
 * (or stopped on an error), err says why (err->code 0 otherwise).
 */
int cw_daemon_run(const cw_config_t *config, const char **entities, size_t nentities,
                  cw_err_t *err);

#endif
