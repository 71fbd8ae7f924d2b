/*
 * This file contains a stream's transformation on the apply side
 * (docs/streams.md, docs/transformations.md): the transformation a stream
 * names, compiled once, applied to the data of each upsert before
 * coalescing. The hub keeps the source's truth; two targets may see
 * different shapes of the same entity.
 *
 * What the spec sees: for an entity with columns, the object of the columns
 * present in the change (absent = unchanged, so a partial update shows only
 * what changed); for an entity that keeps whole documents, the document
 * itself (relaxed extended JSON), whose result becomes the new document.
 * The result must be a JSON object.
 *
 * THREAD SAFETY: a transformation is immutable once made; any number of
 * threads may apply it at once.
 */
#ifndef CW_APPLY_TRANSFORM_H
#define CW_APPLY_TRANSFORM_H

#include "core/config.h"
#include "core/err.h"

#include <stdbool.h>

typedef struct cw_stream_transform cw_stream_transform_t;

/* Compiles config's spec (borrowed for the call). NULL with err (CW_EINVAL) naming the id. */
cw_stream_transform_t *cw_stream_transform_new(const cw_transformation_config_t *config,
                                               cw_err_t *err);

/* NULL is a no-op. */
void cw_stream_transform_free(cw_stream_transform_t *transform);

/*
 * Transforms an upsert's data (JSON object text, borrowed). document: the
 * entity keeps whole documents in "doc", which is what the spec is applied
 * to. *out: the new data (owned). 0, or CW_EINVAL with err naming the
 * transformation and the operation that failed.
 */
int cw_stream_transform_apply(const cw_stream_transform_t *transform, const char *data,
                              bool document, char **out, cw_err_t *err);

#endif
