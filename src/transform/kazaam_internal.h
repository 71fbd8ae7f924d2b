/*
 * This file contains what the parts of the kazaam engine share: an arena,
 * the JSON value tree that keeps every scalar's text (kazaam_value.c),
 * compiled paths with kazaam's get, set and delete rules (kazaam_path.c),
 * Go's time layouts (kazaam_time.c writes, kazaam_time_parse.c reads) and
 * name-based UUIDs (kazaam_uuid.c).
 *
 * THREAD SAFETY: an arena and the trees in it belong to one thread; a
 * compiled spec's arena is only read after compilation.
 */
#ifndef CW_TRANSFORM_KAZAAM_INTERNAL_H
#define CW_TRANSFORM_KAZAAM_INTERNAL_H

#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/json_fields.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- arena: many small allocations freed at once ---- */

typedef cw_arena_t kz_arena_t;   /* core/arena.h */

#define KZ_ARENA_INIT CW_ARENA_INIT

/* What one apply may allocate: a spec that doubles the document at every step stops here. */
#define KZ_MAX_ARENA_BYTES ((size_t)64 << 20)

/* size bytes aligned for any value; aborts when memory runs out. */
static inline void *kz_alloc(kz_arena_t *arena, size_t size)
{
	return cw_arena_alloc(arena, size);
}

static inline char *kz_strndup(kz_arena_t *arena, const char *s, size_t len)
{
	return cw_arena_strndup(arena, s, len);
}

/* Frees every chunk; the arena may be reused. */
static inline void kz_arena_free(kz_arena_t *arena)
{
	cw_arena_free(arena);
}

/* ---- the value tree ---- */

typedef struct kz_value kz_value_t;

typedef struct kz_member {
	const char *key;    /* unescaped; in the arena or the parsed text */
	size_t key_len;
	kz_value_t *value;
} kz_member_t;

struct kz_value {
	cw_json_kind_t kind;
	const char *text;       /* scalars: the exact JSON text (a string with its quotes) */
	size_t len;
	kz_member_t *members;   /* object */
	kz_value_t **items;     /* array */
	size_t count, cap;
};

/*
 * Parses text (len bytes, need not be NUL-terminated) holding one JSON
 * value of any kind into a tree in arena. Scalars point into a copy of the
 * text in arena. Returns the root, or NULL with err.
 */
kz_value_t *kz_parse(kz_arena_t *arena, const char *text, size_t len, cw_err_t *err);

kz_value_t *kz_new_scalar(kz_arena_t *arena, cw_json_kind_t kind, const char *text, size_t len);
kz_value_t *kz_new_null(kz_arena_t *arena);
kz_value_t *kz_new_object(kz_arena_t *arena);
kz_value_t *kz_new_array(kz_arena_t *arena);
/* A string value whose JSON text is '"' body '"' (body already escaped). */
kz_value_t *kz_new_string_body(kz_arena_t *arena, const char *body, size_t len);

/* A deep copy of value in arena (scalar texts are shared, they never change). */
kz_value_t *kz_copy(kz_arena_t *arena, const kz_value_t *value);

void kz_array_push(kz_arena_t *arena, kz_value_t *array, kz_value_t *item);
void kz_array_insert(kz_arena_t *arena, kz_value_t *array, size_t at, kz_value_t *item);
void kz_object_append(kz_arena_t *arena, kz_value_t *object, const char *key, size_t key_len,
                      kz_value_t *value);
/* The first member named key, or NULL. */
kz_member_t *kz_object_find(const kz_value_t *object, const char *key, size_t key_len);

/* Sorts an object's members by key bytes, recursively (as Go's encoding/json writes maps). */
void kz_sort_keys(kz_value_t *value);

/* Appends value's compact JSON text to out; CW_EINVAL when it nests too deep or a key is not UTF-8. */
int kz_write(const kz_value_t *value, cw_buf_t *out);

/* The body of a string value: its text without the quotes (still escaped). */
static inline const char *kz_string_body(const kz_value_t *value, size_t *len)
{
	*len = value->len - 2;
	return value->text + 1;
}

/* ---- paths ---- */

typedef enum kz_step_kind {
	KZ_STEP_KEY,      /* an object key */
	KZ_STEP_INDEX,    /* [n] */
	KZ_STEP_APPEND,   /* [+]: set appends to the array */
	KZ_STEP_PREPEND,  /* [-]: set prepends to the array */
	KZ_STEP_ALL,      /* [*]: every element */
} kz_step_kind_t;

typedef struct kz_step {
	kz_step_kind_t kind;
	const char *key;   /* KZ_STEP_KEY */
	size_t key_len;
	size_t index;      /* KZ_STEP_INDEX */
} kz_step_t;

typedef struct kz_path {
	const char *text;  /* as written in the spec, NUL-terminated, for messages */
	kz_step_t *steps;
	size_t count;
	bool whole;        /* "$" in a shift: the whole document */
	bool has_all;      /* some step is KZ_STEP_ALL */
} kz_path_t;

/*
 * Compiles a kazaam path: segments split at separator; in a segment
 * "key[i]" names key then index i (i: a non-negative integer, *, + or -),
 * text around the first "key[i]" is ignored as kazaam ignores it; a segment
 * "[i]" alone is an index. text is NUL-terminated and must outlive path
 * (both in arena). Fails with CW_EINVAL for an index that is not a number.
 */
int kz_path_compile(kz_arena_t *arena, const char *text, const char *separator,
                    kz_path_t *path, cw_err_t *err);

/*
 * Compiles an "over" path: split at "." only, no key[i] syntax (a segment
 * "[i]" is an index), as kazaam reads it.
 */
void kz_path_compile_plain(kz_arena_t *arena, const char *text, kz_path_t *path);

/*
 * Reads path in root. *out is the value (borrowed from the tree, or built in
 * arena for a wildcard), or NULL when the path does not exist. A wildcard
 * below a missing key yields an empty array. With required, a missing path
 * fails with CW_ENOTFOUND. A wildcard over a value that is not an array
 * fails with CW_EINVAL.
 */
int kz_path_get(kz_arena_t *arena, kz_value_t *root, const kz_path_t *path, bool required,
                kz_value_t **out, cw_err_t *err);

/*
 * Sets path in *root to value (taken over; it must not be shared with the
 * tree): missing objects and arrays on the way are created, an array is
 * padded with nulls up to an index, [+] appends, [-] prepends, a scalar in
 * the way is replaced. A wildcard sets every element of an existing array
 * (a copy of value each). Fails with CW_EINVAL when the path cannot be set
 * (a wildcard over a missing key or a non-array, a root that is not an
 * object).
 */
int kz_path_set(kz_arena_t *arena, kz_value_t **root, const kz_path_t *path, kz_value_t *value,
                cw_err_t *err);

/* Deletes path (no wildcard) from root when it exists; with required a missing path fails. */
int kz_path_delete(kz_value_t *root, const kz_path_t *path, bool required, cw_err_t *err);

/* ---- compiled operations (kazaam.c compiles them, kazaam_ops.c runs them) ---- */

typedef enum kz_op_kind {
	KZ_OP_PASS,
	KZ_OP_SHIFT,
	KZ_OP_CONCAT,
	KZ_OP_COALESCE,
	KZ_OP_EXTRACT,
	KZ_OP_DEFAULT,
	KZ_OP_DELETE,
	KZ_OP_TIMESTAMP,
	KZ_OP_UUID,
} kz_op_kind_t;

/* One name a version 3 or 5 uuid hashes. */
typedef struct kz_uuid_name {
	kz_path_t path;
	const char *fallback;   /* "default", decoded; NULL when the spec has none */
	size_t fallback_len;
} kz_uuid_name_t;

/* One key of an operation's spec: a target path and what goes there. */
typedef struct kz_entry {
	kz_path_t target;
	const char *key;            /* the key as written (timestamp replaces its '*') */
	const char *separator;      /* the operation's keySeparator */
	kz_path_t *sources;         /* shift, coalesce */
	size_t source_count;
	bool list;                  /* shift: the spec value was a list */
	kz_value_t *value;          /* default: the value, object keys sorted */
	const char *input_format;   /* timestamp, decoded */
	const char *output_format;
	int uuid_version;           /* 3, 4 or 5 */
	unsigned char uuid_namespace[16];
	kz_uuid_name_t *names;
	size_t name_count;
} kz_entry_t;

/* One concat source: a literal (its JSON-escaped body) or a path. */
typedef struct kz_concat_source {
	bool literal;
	const char *body;
	size_t body_len;
	kz_path_t path;
} kz_concat_source_t;

typedef struct kz_op {
	kz_op_kind_t kind;
	const char *name;           /* the operation's name, for messages */
	bool require, inplace;
	bool has_over;
	kz_path_t over;
	kz_entry_t *entries;        /* shift, coalesce, default, timestamp, uuid */
	size_t entry_count;
	kz_concat_source_t *concat; /* concat */
	size_t concat_count;
	const char *delim;          /* concat: JSON-escaped body */
	size_t delim_len;
	kz_path_t path;             /* concat: targetPath; extract: path */
	kz_value_t **ignore;        /* coalesce: values never taken (null always) */
	size_t ignore_count;
	kz_path_t *paths;           /* delete */
	size_t path_count;
} kz_op_t;

struct cw_kazaam_env;

/* The state of one apply: its arena and where the world is read. */
typedef struct kz_run {
	kz_arena_t arena;
	const struct cw_kazaam_env *env;
	cw_buf_t scratch;
} kz_run_t;

/*
 * Runs one operation on *doc (replaced when the operation builds a new
 * document). Fails with err; the caller names the operation.
 */
int kz_op_run(kz_run_t *run, const kz_op_t *op, kz_value_t **doc, cw_err_t *err);

/* A string value holding text (raw bytes, escaped here). */
kz_value_t *kz_new_string(kz_arena_t *arena, const char *text, size_t len);
/* True when a and b have the same compact JSON text. */
bool kz_same_text(const kz_value_t *a, const kz_value_t *b, cw_buf_t *scratch);

/* ---- timestamp: Go time layouts ---- */

typedef struct kz_time {
	int64_t unix_sec;
	int32_t nsec;
	int32_t offset;     /* seconds east of UTC */
	char zone[16];      /* zone abbreviation; "" prints the offset */
} kz_time_t;

/* Parses value (len bytes) with a Go layout ("2006-01-02T15:04:05Z07:00") or "$unix". */
int kz_time_parse(const char *layout, const char *value, size_t len, kz_time_t *out,
                  cw_err_t *err);
/* Appends t formatted with a Go layout, or its Unix seconds for "$unix". */
void kz_time_format(const kz_time_t *t, const char *layout, cw_buf_t *out);
/* The instant in the process's local time zone, as Go's time.Unix returns it. */
kz_time_t kz_time_local(int64_t unix_sec, int32_t nsec);

/* ---- uuid ---- */

/* Reads a namespace: DNS, URL, OID, X500 or a UUID in any form Go's gofrs/uuid reads. */
bool kz_uuid_namespace(const char *text, unsigned char out[16]);
/* Version 3 (MD5) or 5 (SHA-1) UUID of namespace and name. */
void kz_uuid_from_name(int version, const unsigned char ns[16], const char *name, size_t len,
                       unsigned char out[16]);
/* Sets the version and RFC 4122 variant bits of 16 random bytes. */
void kz_uuid_v4(unsigned char bytes[16]);
/* Appends the canonical lowercase text (36 characters). */
void kz_uuid_text(const unsigned char u[16], cw_buf_t *out);

#endif
