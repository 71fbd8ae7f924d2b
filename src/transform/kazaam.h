/*
 * This file contains the kazaam transformation engine: the JSON spec format
 * of the kazaam library (a JSON array of operations: shift, concat, coalesce,
 * extract, default, delete, pass, timestamp, uuid, with kazaam's paths,
 * array indexes, [*] wildcards, [+] / [-] append and prepend, require,
 * inplace, over and keySeparator) applied to one JSON document.
 * docs/transformations.md is the user-facing description, including the few
 * places where cachewarp refuses what kazaam would turn into invalid JSON.
 *
 * Values are exact: a value moved by a transformation keeps its JSON text
 * (2.50 stays 2.50, a 30-digit integer keeps its digits); nothing is read
 * into a C double. Objects keep their key order; keys a transformation adds
 * go at the end of their object, in the order the spec names them.
 *
 * A spec is compiled once (cw_kazaam_compile): every error kazaam reports
 * for any document (an unknown operation, a missing "spec", a bad index, a
 * timestamp without formats, a uuid without a namespace) is reported then,
 * naming the operation's index. What depends on the document (a required
 * path that is absent, a wildcard over something that is not an array, a
 * timestamp that does not parse) is reported by cw_kazaam_apply.
 *
 * THREAD SAFETY: a compiled spec is immutable; any number of threads may
 * apply it at once. Each apply works in memory of its own.
 */
#ifndef CW_TRANSFORM_KAZAAM_H
#define CW_TRANSFORM_KAZAAM_H

#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"

#include <stddef.h>

typedef struct cw_kazaam cw_kazaam_t;

/*
 * Where the operations that depend on the world get it: "timestamp" with
 * inputFormat "$now" reads clock's wall time, "uuid" version 4 reads random
 * bytes. Tests pass a fake clock and a seeded random source so the output is
 * known; NULL members (or a NULL env) mean the system clock and the kernel's
 * random bytes.
 */
typedef struct cw_kazaam_env {
	const cw_clock_t *clock;   /* borrowed for the call; NULL: cw_clock_system() */
	/* Fills out with len random bytes; NULL: getrandom(2). */
	void (*random)(void *random_ctx, unsigned char *out, size_t len);
	void *random_ctx;
} cw_kazaam_env_t;

/*
 * Compiles the spec text (len bytes, borrowed for the call; need not be
 * NUL-terminated): a JSON array of operations, or empty text (which passes
 * documents through unchanged, as kazaam does). Returns the compiled spec
 * (owned by the caller, free with cw_kazaam_free), or NULL with err
 * (CW_EINVAL, domain "kazaam") naming the operation index and the reason.
 */
cw_kazaam_t *cw_kazaam_compile(const char *spec_json, size_t len, cw_err_t *err);

/* Frees a compiled spec; NULL is a no-op. */
void cw_kazaam_free(cw_kazaam_t *kazaam);

/* Number of operations in the compiled spec. */
size_t cw_kazaam_operation_count(const cw_kazaam_t *kazaam);

/*
 * Applies the compiled spec (borrowed) to one JSON document (doc, len bytes,
 * borrowed for the call) and appends the result's compact JSON text to out
 * (owned by the caller; nothing is appended on failure). env may be NULL.
 * Returns 0, or CW_EINVAL with err when the document is not JSON or an
 * operation failed on it (the message names the operation index).
 */
int cw_kazaam_apply(const cw_kazaam_t *kazaam, const char *doc, size_t len,
                    const cw_kazaam_env_t *env, cw_buf_t *out, cw_err_t *err);

#endif
