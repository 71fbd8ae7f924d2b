/*
 * This file contains named failpoints for the reliability suite (issue
 * "Reliability suite"; STYLE.md "fault injection through seams"). A
 * failpoint marks a moment where a crash or an error must not lose or
 * duplicate a change: `after_oplog_copy`, `before_hub_commit`, ...
 *
 * Compiled in only when the build defines CW_FAILPOINTS (cmake
 * -DCW_FAILPOINTS=ON, test builds); in a release build CW_FAILPOINT(name)
 * is the constant 0 and costs nothing.
 *
 * Armed from the environment, read once at the first failpoint reached:
 *   CW_FAILPOINTS="after_oplog_copy=abort,before_hub_commit=error@3"
 * Each entry is NAME=ACTION[@N]: ACTION is `abort` (the process dies at once,
 * as with kill -9), `error` (the call site fails as if its database call
 * had) or `sleepMS` (the call site waits MS milliseconds, at most 600000,
 * then goes on: a slow moment held open for a test); @N fires on the Nth
 * time the failpoint is reached (default 1) and only then. Names are [a-z0-9_]; unknown names simply never fire.
 *
 * THREAD SAFETY: any thread may reach a failpoint; hit counts are atomic.
 */
#ifndef CW_CORE_FAILPOINT_H
#define CW_CORE_FAILPOINT_H

#include <stdbool.h>

#ifdef CW_FAILPOINTS
/* Returns true when the call site must fail; aborts the process for `abort`. */
bool cw_failpoint_hit(const char *name);
/* Re-reads CW_FAILPOINTS and resets every hit count (for unit tests). */
void cw_failpoint_reset(void);
#define CW_FAILPOINT(name) cw_failpoint_hit(name)
#else
#define CW_FAILPOINT(name) 0
#endif

#endif
