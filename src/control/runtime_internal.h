/*
 * This file contains the steps the commands of runtime.h share: loading the
 * configuration (errors printed, logging set up from it) and reaching the hub.
 */
#ifndef CW_CONTROL_RUNTIME_INTERNAL_H
#define CW_CONTROL_RUNTIME_INTERNAL_H

#include "core/cancel.h"
#include "core/config.h"
#include "hub/hub.h"

/* Loads path with the process environment; prints every error and returns NULL on failure. */
cw_config_t *cw_runtime_load_config(const char *path);

/* One connection attempt plus a schema check; prints the error and returns NULL on failure. */
cw_hub_t *cw_runtime_connect_once(const cw_config_t *config);

/* What a one-shot command does with the hub; 0 or an error code with err filled. */
typedef int (*cw_runtime_hub_fn)(cw_hub_t *hub, const cw_config_t *config, const void *arg,
                                 cw_err_t *err);

/*
 * Loads config_path, connects once and runs action(hub, config, arg, err).
 * Returns the exit code: 0, 2 for a bad configuration or an action's
 * CW_EINVAL, 1 otherwise; the error is printed as "cachewarp: <message>".
 */
int cw_runtime_hub_action(const char *config_path, cw_runtime_hub_fn action, const void *arg);

/*
 * Connects with the configured retry policy, logging each failed attempt
 * with the masked URL. NULL when retry.give_up_after passed (logged), at
 * once when the hub refused the credentials (CW_EAUTH, logged), or when
 * cancel (borrowed, may be NULL) fired.
 */
cw_hub_t *cw_runtime_connect_retrying(const cw_config_t *config, cw_cancel_t *cancel);

#endif
