/*
 * This file contains leases: one process at a time captures a source or
 * applies a target (DESIGN.md §6). A lease is a session-level advisory lock
 * on the hub, keyed by a name such as "source:shop", held on a connection of
 * its own for as long as the component runs. A second `cachewarp run` with
 * the same configuration finds the lease taken and waits as a standby; when
 * the first process dies its connection closes, PostgreSQL releases the
 * lock, and the standby takes over.
 *
 * THREAD SAFETY: a lease is used by one thread at a time.
 */
#ifndef CW_HUB_LEASE_H
#define CW_HUB_LEASE_H

#include "core/config.h"
#include "core/err.h"

#include <stdbool.h>

typedef struct cw_lease cw_lease_t;

/* Advisory lock class of leases (the second key is hashtext(name)). */
#define CW_HUB_LOCK_LEASE 0x63770001

/*
 * A lease on name (copied) at the hub url (copied) with hub_auth (borrowed
 * for the lease's life, may be NULL); owned by the caller. Does no I/O.
 */
cw_lease_t *cw_lease_new(const char *hub_url, const cw_auth_config_t *hub_auth, const char *name);

/*
 * Tries to take the lease, or checks that it is still held: connects when
 * needed. Returns 0 with *held set (false: another process holds it), or
 * CW_EDB when the hub cannot be reached (the lease is then not held: a lost
 * connection means PostgreSQL released the lock).
 */
int cw_lease_acquire(cw_lease_t *lease, bool *held, cw_err_t *err);

/* Releases the lease (closes its connection); the next acquire tries again. */
void cw_lease_release(cw_lease_t *lease);

/* Releases and frees; NULL is a no-op. */
void cw_lease_free(cw_lease_t *lease);

#endif
