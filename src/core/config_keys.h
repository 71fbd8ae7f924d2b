/*
 * This file contains the configuration's key table and the table-driven
 * helpers built on it, shared by the loader (config.c, config_yaml.c,
 * config_env.c, config_scope.c, config_relations.c: see config_loader.h),
 * config_keys.c (the table), config_values.c (values through the table),
 * config_names.c (environment variables and names in messages),
 * config_write.c (`config show`, the reference) and config_diff.c
 * (comparing two configurations). It is private to the config*.c files:
 * other modules include core/config.h.
 *
 * A key's path is its place in the file with "[]" for a list item:
 * "hub.url", "sources[].url", "entities[].columns[].path". A concrete path
 * puts the index in: "sources[0].url". A "scope" is a path prefix ending in
 * "." or "" for the top level ("sources[]." holds a source's keys).
 *
 * Offsets: a key's offset is into the struct of its nearest enclosing list
 * item (cw_source_config_t for "sources[].url") or into cw_config_t for keys
 * outside lists. Groups ("hub") have no storage of their own.
 */
#ifndef CW_CORE_CONFIG_KEYS_H
#define CW_CORE_CONFIG_KEYS_H

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/units.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum cw_key_kind {
	CW_KEY_GROUP = 0,    /* a mapping of keys */
	CW_KEY_LIST,         /* a sequence of mappings */
	CW_KEY_STRING,       /* char *, checked by check() when set */
	CW_KEY_INT,          /* int64_t in [min, max] */
	CW_KEY_FLOAT,        /* double in [fmin, fmax] */
	CW_KEY_DURATION,     /* int64_t milliseconds in [min, max] */
	CW_KEY_SIZE,         /* int64_t bytes in [min, max] */
	CW_KEY_ENUM,         /* an enum stored as int: the index into values */
	CW_KEY_COLUMN_TYPE,  /* cw_column_type_t, parsed by cw_column_type_parse */
	CW_KEY_URL,          /* char *; its password is masked when printed */
	CW_KEY_SECRET,       /* char *; printed as "****" */
	/* A list of words: char *, the words joined by ","; each word passes check().
	 * The file writes a sequence ([23505, 22P02]) or a comma-separated string,
	 * the environment the string; at most max_items words. */
	CW_KEY_WORDS,
} cw_key_kind_t;

enum {
	CW_KEY_REQUIRED = 1 << 0,  /* no default: the file or environment must set it */
	/* LIST: the file writes it as a mapping keyed by each item's name
	 * ("targets: {warehouse: {write_batch_size: 100}}"); the environment by index. */
	CW_KEY_BY_NAME = 1 << 1,
};

typedef struct cw_config_key {
	const char *path;
	cw_key_kind_t kind;
	size_t offset;                 /* of the value, or of a list's array pointer */
	unsigned flags;
	const char *default_text;      /* parsed like a value from the file; NULL = unset */
	const char *default_doc;       /* the default as the reference shows it when computed */
	int64_t min, max;              /* INT, DURATION, SIZE */
	double fmin, fmax;             /* FLOAT */
	const char *const *values;     /* ENUM: NULL-terminated names */
	/* List items only: the key applies (and, when required, is required) only to
	 * items whose "type" is one of these space-separated names; NULL = all. */
	const char *applies_to;
	/* STRING: extra validation of a value (borrowed); 0 or CW_EINVAL with err. */
	int (*check)(const char *value, cw_err_t *err);
	/* LIST: offset of the size_t count, size of an item, most items allowed (WORDS: words). */
	size_t count_offset, item_size, max_items;
	const char *help;              /* one or more sentences for the reference */
} cw_config_key_t;

/* The table, in reference order, and its length. Static data, never freed. */
const cw_config_key_t *cw_config_keys(size_t *nkeys);

/* The key whose path is pattern (len bytes of it), or NULL. */
const cw_config_key_t *cw_config_key_find(const char *pattern, size_t len);

/* The scope a key's value lives in: its path up to the last "." (excluded: "" at top). */
size_t cw_config_key_parent_len(const cw_config_key_t *key);

/* The last segment of its path: "url" for "sources[].url". Borrowed from the table. */
const char *cw_config_key_leaf(const cw_config_key_t *key);

/* Where the value of key lives in base (the struct its offset is into). */
void *cw_config_key_field(const cw_config_key_t *key, void *base);

/*
 * Sets the value of key (a value kind) in base from text (borrowed): parses
 * it by kind, checks the range and check(), replaces the old value. 0, or
 * CW_EINVAL with a message without position or key ("out of range: ...").
 */
int cw_config_key_set(const cw_config_key_t *key, void *base, const char *text, cw_err_t *err);

/*
 * Checks one word of a WORDS key (borrowed): not empty, no ",", check()
 * accepts it. 0, or CW_EINVAL with a message without position or key.
 */
int cw_config_word_check(const cw_config_key_t *key, const char *word, cw_err_t *err);

/* Frees a string value of key in base and sets it NULL; other kinds are left alone. */
void cw_config_key_clear(const cw_config_key_t *key, void *base);

/* The list's items as an array base and count (key->kind == CW_KEY_LIST). */
char *cw_config_list_items(const cw_config_key_t *list, void *base, size_t *count);

/* Appends a zeroed item with its defaults set to the list in base; returns it. */
void *cw_config_list_append(const cw_config_key_t *list, void *base);

/* Sets every default of the keys whose values live in base, at scope (a pattern prefix). */
void cw_config_defaults(const char *scope, void *base);

/* Frees every value owned by base at scope (strings, lists and their items). */
void cw_config_free_scope(const char *scope, void *base);

/* The name of the enum value stored for key in base. */
const char *cw_config_enum_name(const cw_config_key_t *key, const void *base);

/*
 * True when key applies to the item base: key->applies_to is NULL, or the
 * item's "type" (the enum key "<scope>type") is one of its names.
 */
bool cw_config_key_applies(const cw_config_key_t *key, const void *base);

/* Writes an INT, DURATION or SIZE value as the file would: 1000, 250ms, 64MiB. */
void cw_config_format_number(const cw_config_key_t *key, int64_t value, char out[CW_UNITS_FORMAT_LEN]);

/*
 * Appends the names of key->applies_to (not NULL), each between quote and
 * quote, separated by separator: "postgres or mongodb", "`sqlite`".
 */
void cw_config_applies_list(const cw_config_key_t *key, const char *separator, const char *quote,
                            cw_buf_t *out);

/*
 * Appends the environment variable of key to out: CACHEWARP_HUB_URL, or with
 * "<i>" where a list index goes: CACHEWARP_SOURCES_<i>_URL.
 */
void cw_config_key_env_name(const cw_config_key_t *key, cw_buf_t *out);

/*
 * Matches an environment variable name against the value keys' variables.
 * Returns the key and fills indexes (at most 4, their count in *nindexes), or
 * NULL.
 */
const cw_config_key_t *cw_config_env_match(const char *name, size_t indexes[4], size_t *nindexes);

/* The closest of names (at edit distance 2 or less) to word, or NULL. */
const char *cw_config_closest(const char *word, const char *const *names, size_t count);

/*
 * Appends the message for a reference to an unknown name: `unknown WHAT
 * "name"` and a hint: the closest of names (count of them, the valid ones of
 * configured items), else the names configured, else that there are none.
 */
void cw_config_unknown_name(cw_buf_t *out, const char *what, const char *name,
                            const char *const *names, size_t count, size_t configured);

/* Appends names joined as "a, b or c". */
void cw_config_join(cw_buf_t *out, const char *const *names, size_t count);

/* True when key's value lives in the struct of scope: no list item between them. */
bool cw_config_key_in_base(const cw_config_key_t *key, const char *scope);

/*
 * Appends the variable a misspelt environment variable name most likely
 * meant (within edit distance 2, list indexes aside), e.g.
 * CACHEWARP_SOURCES_<i>_URL for CACHEWARP_SOURCES_1_ULR. False when none is close.
 */
bool cw_config_env_suggest(const char *name, cw_buf_t *out);

/* Levenshtein distance of a and b, or a large number when either is longer than 64 bytes. */
size_t cw_config_distance(const char *a, const char *b);

/*
 * Appends text quoted for a message: at most 64 bytes, '"' and '\' escaped,
 * bytes outside printable ASCII as \xNN.
 */
void cw_config_quote(cw_buf_t *out, const char *text);

/*
 * A relative path (a target's dir, an authentication file) made absolute
 * against the directory of config_name, the configuration file. Returns a
 * new string owned by the caller.
 */
char *cw_config_resolve_path(const char *config_name, const char *path);

/* How the checks in config_auth.c and config_streams.c report: the loader's error list. */
typedef struct cw_config_reporter {
	void *loader;
	/* Records message as an error about the concrete key path (where it came from is looked up). */
	void (*report)(void *loader, const char *path, const char *message);
	/* Whether an error was reported about path or a key below it. */
	bool (*has_error)(void *loader, const char *path);
} cw_config_reporter_t;

/* reporter->report with a printf-style message. */
void cw_config_reportf(const cw_config_reporter_t *reporter, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Reports every item of the list at list_path (a top-level list of config)
 * whose string leaf ("id", "name") an earlier item has already:
 * `duplicate <what> "x" (<list>[j] has it already)`.
 */
void cw_config_check_unique(const cw_config_reporter_t *reporter, const cw_config_t *config,
                            const char *list_path, const char *leaf, const char *what);

/*
 * The checks of `authentication` and every `auth_id` (config_auth.c): unique
 * ids, references that exist, each type's keys, readable files (made
 * absolute against config_name), no password in a url that names an
 * auth_id. Then resolves each auth_id into its `auth` pointer and creates
 * each entry's state. Errors go to reporter.
 */
void cw_config_check_auth(cw_config_t *config, const char *config_name,
                          const cw_config_reporter_t *reporter);

/* ---- streams and transformations (config_streams.c) ------------------- */

/*
 * Checks a transformation's spec (borrowed) by compiling it with the kazaam
 * engine (transform/kazaam.h), after placing a JSON syntax error by line and
 * column. 0 or CW_EINVAL with the reason.
 */
int cw_config_check_transformation_spec(const char *spec, cw_err_t *err);

/* A transformation id: [a-z][a-z0-9_-]*, at most 63 characters. */
int cw_config_check_transformation_id(const char *id, cw_err_t *err);

/* One permanent error code: 1 to 15 characters of [A-Za-z0-9], what an error's server code holds. */
int cw_config_check_error_code(const char *code, cw_err_t *err);

/*
 * The checks across keys of transformations and streams: unique ids, every
 * transformation_id known, one stream per entity and target, retry delays
 * in order, and no target writing a table or collection a configured source
 * captures (a replication loop). Values already reported are skipped.
 */
void cw_config_check_streams(const cw_config_t *config, const cw_config_reporter_t *reporter);

#endif
