/* This file contains the registry of target types (target.h): one line per backend, and
 * the metric families the backends share. */
#include "apply/target.h"

#include "apply/apply_loop.h"
#include "apply/mongodb_target.h"
#include "apply/postgres_target.h"
#include "apply/sqlite.h"

#include <stddef.h>

void cw_target_declare_metrics(cw_metrics_t *metrics)
{
	cw_metrics_declare(metrics, "cachewarp_target_up", CW_METRIC_GAUGE,
	                   "1 when the target's database answered the last statement, else 0.");
	cw_metrics_declare(metrics, "cachewarp_target_last_apply_timestamp_seconds",
	                   CW_METRIC_GAUGE, "Unix time of the target's last successful apply.");
	cw_metrics_declare(metrics, "cachewarp_target_quarantined_total", CW_METRIC_COUNTER,
	                   "Values and rows a target quarantined, by entity.");
}

const cw_target_backend_t *cw_target_backend_for(cw_target_type_t type)
{
	switch (type) {
	case CW_TARGET_SQLITE: return &cw_sqlite_backend;
	case CW_TARGET_POSTGRES: return &cw_postgres_backend;
	case CW_TARGET_MONGODB: return &cw_mongodb_backend;
	}
	return NULL;
}

const cw_target_ops_t *cw_target_ops_for(cw_target_type_t type)
{
	return cw_target_backend_for(type) != NULL ? &cw_apply_target_ops : NULL;
}
