/* This file contains the leases declared in lease.h. */
#include "hub/lease.h"

#include "core/mem.h"
#include "hub/hub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cw_lease {
	char *hub_url;
	const cw_auth_config_t *hub_auth;   /* borrowed: NULL or the configuration's hub.auth */
	char *name;
	cw_hub_t *hub;     /* open while the lease is held or being tried */
	bool held;
};

cw_lease_t *cw_lease_new(const char *hub_url, const cw_auth_config_t *hub_auth, const char *name)
{
	cw_lease_t *lease = cw_xcalloc(1, sizeof *lease);
	lease->hub_url = cw_xstrdup(hub_url);
	lease->hub_auth = hub_auth;
	lease->name = cw_xstrdup(name);
	return lease;
}

void cw_lease_release(cw_lease_t *lease)
{
	cw_hub_close(lease->hub);
	lease->hub = NULL;
	lease->held = false;
}

void cw_lease_free(cw_lease_t *lease)
{
	if (lease == NULL)
		return;
	cw_lease_release(lease);
	free(lease->hub_url);
	free(lease->name);
	free(lease);
}

int cw_lease_acquire(cw_lease_t *lease, bool *held, cw_err_t *err)
{
	*held = false;
	if (lease->hub == NULL &&
	    (lease->hub = cw_hub_connect_auth(lease->hub_url, lease->hub_auth, err)) == NULL) {
		lease->held = false;
		return CW_EDB;
	}
	char lock_class[16];
	snprintf(lock_class, sizeof lock_class, "%d", CW_HUB_LOCK_LEASE);
	const char *params[] = {lock_class, lease->name};
	/* Held already: ask the server (the connection may have been reset under us). */
	const char *sql = lease->held
		? "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' "
		  "AND pid = pg_backend_pid() AND classid = $1::int::oid "
		  "AND objid = hashtext($2)::oid AND granted)"
		: "SELECT pg_try_advisory_lock($1::int, hashtext($2))";
	PGresult *res = cw_hub_exec(lease->hub, sql, 2, params, "could not take the lease", err);
	if (res == NULL) {
		cw_lease_release(lease);
		return CW_EDB;
	}
	lease->held = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	*held = lease->held;
	return 0;
}
