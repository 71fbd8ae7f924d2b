/*
 * This file contains the configuration: cachewarp.yaml (DESIGN.md §5) read
 * with libyaml into cw_config_t, with defaults filled in and CACHEWARP_*
 * environment variables applied, then validated.
 *
 * One table of keys (core/config_keys.c) holds every key's name, type,
 * default, range, validation and help text. It is the single source of
 * truth for the loader, the environment overrides, `config show`, and the
 * generated reference docs/configuration.md (`cachewarp config reference`;
 * unit.config fails when the file and the table differ).
 *
 * Environment: CACHEWARP_ + the key path upper-cased with "." turned into
 * "_" overrides that key (CACHEWARP_HUB_URL, CACHEWARP_APPLY_BATCH_SIZE). A
 * list item is addressed by its 0-based index: CACHEWARP_SOURCES_0_URL is
 * sources[0].url, CACHEWARP_ENTITIES_1_COLUMNS_0_PATH is
 * entities[1].columns[0].path. The environment overrides keys of items the
 * file has; it cannot add items. Every other CACHEWARP_* variable is an
 * unknown key, except CACHEWARP_CONFIG (the file to read, control/cli.h).
 *
 * Errors name where the value came from and the key:
 *   cachewarp.yaml:12:5: key "sources[0].ulr": unknown key (did you mean "url"?)
 *   environment variable CACHEWARP_APPLY_BATCH_SIZE: key "apply.batch_size": out of range: ...
 * A load reports every error it finds (up to 50), not just the first. The
 * checks that relate keys to each other (duplicate names, an entity's
 * source, retry.max >= retry.initial) run once every single value is valid.
 *
 * Relative paths: a target's relative `dir` and the files of an
 * authentication entry are taken relative to the directory of the
 * configuration file (also when they come from the environment), so the
 * result does not depend on the working directory.
 *
 * Authentication: each `auth_id` is resolved to its entry (the `auth`
 * pointers below), the files an entry names must be readable when the file
 * is loaded, and each entry gets its runtime state (core/auth.h).
 *
 * Ownership: cw_config_load* returns a cw_config_t owned by the caller and
 * freed with cw_config_free; every pointer inside it is owned by the config
 * and lives until then. The config is read-only after loading and may be
 * shared between threads.
 */
#ifndef CW_CORE_CONFIG_H
#define CW_CORE_CONFIG_H

#include "core/buf.h"
#include "core/entity.h"
#include "core/err.h"
#include "core/log.h"
#include "core/retry.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum cw_source_type {
	CW_SOURCE_POSTGRES = 0,
	CW_SOURCE_MONGODB,
	CW_SOURCE_MYSQL,
} cw_source_type_t;

/* What one MongoDB change stream watches. */
typedef enum cw_watch_scope {
	CW_WATCH_DATABASE = 0,    /* one stream on the database, filtered to the entities' collections */
	CW_WATCH_COLLECTION,      /* one stream per collection */
} cw_watch_scope_t;

/* What a source does when its stored position is gone (DESIGN.md §4). */
typedef enum cw_position_lost {
	CW_POSITION_LOST_RESCAN = 0,  /* new generation: full scan, then sweep */
	CW_POSITION_LOST_FAIL,        /* stop the source with an error */
} cw_position_lost_t;

typedef enum cw_target_type {
	CW_TARGET_SQLITE = 0,
	CW_TARGET_POSTGRES,
	CW_TARGET_MONGODB,
} cw_target_type_t;

typedef enum cw_delete_mode {
	CW_DELETE_HARD = 0,
	CW_DELETE_SOFT,           /* keep the row, set is_deleted */
} cw_delete_mode_t;

typedef enum cw_entity_delete {
	CW_ENTITY_DELETE_DROP = 0,    /* an entity deleted in the hub: drop its table */
	CW_ENTITY_DELETE_KEEP,        /* keep the table and its rows; stop applying */
} cw_entity_delete_t;

/* How an authentication entry obtains credentials (docs/authentication.md). */
typedef enum cw_auth_type {
	CW_AUTH_USERNAME_PASSWORD = 0,  /* a user name and a password (or a file holding it) */
	CW_AUTH_CERTIFICATE,            /* a TLS client certificate, its key and the CA */
	CW_AUTH_COMMAND,                /* a command that prints a password or token */
} cw_auth_type_t;

/* The runtime state of an authentication entry (core/auth.h): thread-safe, owned by the config. */
typedef struct cw_auth_state cw_auth_state_t;

/* One item of `authentication:`; sources, targets and the hub refer to it by id. */
typedef struct cw_auth_config {
	char *id;                       /* identifier, unique among authentication entries */
	cw_auth_type_t type;
	char *username;                 /* NULL = the url's user */
	char *password;                 /* username_password: a secret */
	char *password_file;            /* username_password: resolved against the file's directory */
	char *cert_file;                /* certificate: resolved like password_file */
	char *key_file;
	char *ca_file;
	char *key_password;             /* certificate: a secret, NULL = the key is not encrypted */
	char *command;                  /* command: words, or a shell command when shell is 1 */
	int shell;                      /* command: 0 false, 1 true (run with /bin/sh -c) */
	int64_t refresh_ms;             /* command: run it again once its output is this old */
	int64_t timeout_ms;             /* command: kill it after this long */
	cw_auth_state_t *state;         /* owned; created when the configuration loads */
} cw_auth_config_t;

/* What a stream does with a change it cannot transform or write (docs/streams.md). */
typedef enum cw_on_error {
	CW_ON_ERROR_RETRY = 0,        /* keep retrying (capped delays); the stream waits */
	CW_ON_ERROR_SKIP,             /* drop the change, log it and count it */
	CW_ON_ERROR_FAIL_STREAM,      /* stop this stream; the others go on */
	CW_ON_ERROR_DEAD_LETTER,      /* set it aside in cachewarp.dead_letters; go on */
} cw_on_error_t;

/* A stream's retry policy; a value of 0 (or NULL) takes the global `retry`. */
typedef struct cw_stream_retry {
	int64_t max_attempts;           /* attempts before on_error; 0 = from retry.give_up_after */
	int64_t initial_delay_ms;
	int64_t max_delay_ms;
	double backoff_multiplier;      /* >= 1.0; 0 = retry.multiplier */
	char *permanent_error_codes;    /* comma-separated SQLSTATEs / server codes, or NULL */
} cw_stream_retry_t;

/* One entity flowing to one target: targets[].streams[]. */
typedef struct cw_stream_config {
	char *entity;                   /* the entity (required) */
	char *transformation_id;        /* a transformations[].id, or NULL */
	int enabled;                    /* 0 false, 1 true (default) */
	int64_t batch_size;             /* most changes per write; 0 = apply.batch_size */
	cw_on_error_t on_error;         /* write errors, after the retry budget */
	cw_stream_retry_t retry_policy;
} cw_stream_config_t;

/* A reusable transformation: transformations[]. */
typedef struct cw_transformation_config {
	char *id;                       /* unique; streams refer to it */
	char *name;                     /* human-readable, may be NULL */
	int type;                       /* 0 = kazaam, the only engine */
	char *spec;                     /* the engine's spec, JSON text */
	cw_on_error_t on_error;         /* error_handling.on_error: a change it cannot transform */
} cw_transformation_config_t;

typedef struct cw_source_config {
	char *name;                     /* identifier, unique among sources */
	cw_source_type_t type;
	char *url;                      /* holds a password: print through cw_secret_mask */
	char *publication;              /* postgres: default "cachewarp"; else NULL */
	char *slot;                     /* postgres: default "cachewarp_<name>"; else NULL */
	char *database;                 /* mongodb (required); else NULL */
	cw_watch_scope_t watch;         /* mongodb */
	cw_position_lost_t on_position_lost;
	char *auth_id;                  /* NULL = the credentials in url */
	const cw_auth_config_t *auth;   /* the entry auth_id names, borrowed from the config; or NULL */
} cw_source_config_t;

typedef struct cw_target_config {
	char *name;                     /* identifier, unique among targets */
	cw_target_type_t type;
	char *dir;                      /* sqlite (required), resolved against the file's directory */
	char *url;                      /* postgres, mongodb (required); holds a password */
	char *schema;                   /* postgres: default "public" */
	char *database;                 /* mongodb: NULL = the database named in url */
	int64_t idle_timeout_ms;        /* sqlite: close a cache's idle connections after this */
	cw_delete_mode_t delete_mode;   /* postgres */
	char *soft_delete_column;       /* postgres: default "is_deleted" */
	cw_entity_delete_t on_entity_delete;  /* postgres */
	char *meta_schema;              /* postgres: default "cachewarp_meta" */
	int64_t write_batch_size;       /* postgres: rows per COPY and INSERT, default 500 */
	int64_t column_budget;          /* postgres: columns a table grows to, default 400 */
	cw_decimal_mode_t decimal_handling;   /* sqlite, postgres: numbers a double cannot hold */
	char *write_concern;            /* mongodb: "majority" (default) or a number of members */
	char *entities;                 /* mongodb: NULL = every entity, else only these ("a,b") */
	char *exclude;                  /* mongodb: entities, collections or tables left out ("a,b") */
	char *auth_id;                  /* postgres, mongodb: NULL = the credentials in url */
	const cw_auth_config_t *auth;   /* the entry auth_id names, borrowed from the config; or NULL */
	cw_stream_config_t *streams;    /* per-entity settings; an entity without one has the defaults */
	size_t nstreams;
} cw_target_config_t;

typedef struct cw_config {
	char *path;                     /* the file name it was loaded from */
	char *version;                  /* the file's format: "1" */
	struct {
		char *url;                  /* required; holds a password */
		int64_t pool_size;
		int64_t retention_ms;       /* 0 = keep rows until every consumer passed them */
		char *auth_id;              /* NULL = the credentials in url */
		const cw_auth_config_t *auth;  /* the entry auth_id names, borrowed; or NULL */
	} hub;
	cw_source_config_t *sources;
	size_t nsources;
	cw_entity_t *entities;          /* validated with cw_entity_validate; status pending, version 1 */
	size_t nentities;
	cw_target_config_t *targets;
	size_t ntargets;
	cw_transformation_config_t *transformations;
	size_t ntransformations;
	struct {
		char *listen;               /* "host:port" */
		char *token;                /* NULL = no authentication; a secret */
		int64_t max_body_bytes;
	} api;
	struct {
		cw_log_level_t level;
		cw_log_format_t format;
	} log;
	struct {
		int64_t batch_size;
		int64_t flush_interval_ms;
		int64_t queue_depth;        /* batches waiting between a source and the oplog writer */
		int64_t snapshot_batch_size;   /* rows per hub transaction of a PostgreSQL snapshot */
	} capture;
	struct {
		int64_t batch_size;
		int64_t poll_interval_ms;
	} apply;
	cw_retry_policy_t retry;        /* jitter is not configurable: 0.5 */
	struct {
		int64_t interval_ms;        /* the scheduled health check; 0 = off */
		char *window;               /* "HH:MM-HH:MM" (local time) or NULL = any time */
		int repair;                 /* 0 false, 1 true: the scheduled run repairs */
		int64_t settle_timeout_ms;  /* the re-check's wait for a target to catch up */
	} verify;
	cw_auth_config_t *authentication;
	size_t nauthentication;
	struct {
		int enabled;                /* config.watch: 0 false, 1 true: reload when the file changes */
		int64_t interval_ms;        /* config.watch_interval: how often the file is read */
	} watch;
	char sha256[65];                /* of the bytes loaded, hex (core/sha256.h) */
} cw_config_t;

/* Where a load reads overrides from and where it puts every error. */
typedef struct cw_config_load_opts {
	/* "NAME=value" strings, NULL-terminated, borrowed; NULL = no environment. Pass environ in production. */
	char *const *envp;
	/* Borrowed, may be NULL: every error is appended here, one per line. */
	cw_buf_t *errors;
} cw_config_load_opts_t;

/*
 * Reads the file at path (borrowed) and builds the configuration. opts may
 * be NULL (no environment, first error only). On success returns 0 and sets
 * *out (owned by the caller, cw_config_free). Otherwise returns CW_EIO (file
 * unreadable) or CW_EINVAL (any configuration error), leaves *out NULL and
 * fills err with the first error; opts->errors gets all of them.
 */
int cw_config_load(const char *path, const cw_config_load_opts_t *opts, cw_config_t **out,
                   cw_err_t *err);

/*
 * cw_config_load on len bytes in memory (borrowed; need not be
 * NUL-terminated). name is the file name used in messages and to resolve
 * relative paths.
 */
int cw_config_load_buffer(const char *name, const char *bytes, size_t len,
                          const cw_config_load_opts_t *opts, cw_config_t **out, cw_err_t *err);

/*
 * The SHA-256 (hex) of the file at path now, to compare with a loaded
 * configuration's sha256. 0, or CW_EIO with err filled.
 */
int cw_config_file_sha256(const char *path, char hex[65], cw_err_t *err);

/* Frees the configuration; NULL is a no-op. */
void cw_config_free(cw_config_t *config);

/* The source, target or entity of that name, borrowed from config, or NULL. */
const cw_source_config_t *cw_config_source(const cw_config_t *config, const char *name);
const cw_target_config_t *cw_config_target(const cw_config_t *config, const char *name);
const cw_entity_t *cw_config_entity(const cw_config_t *config, const char *name);
const cw_transformation_config_t *cw_config_transformation(const cw_config_t *config,
                                                           const char *id);

/*
 * The stream of entity on target (borrowed), or NULL when the target has no
 * streams[] entry for it: the entity flows with the defaults.
 */
const cw_stream_config_t *cw_config_stream(const cw_target_config_t *target, const char *entity);

/* "retry", "skip", "fail_stream", "dead_letter". */
const char *cw_on_error_name(cw_on_error_t action);

/* The authentication entry of that id, borrowed from config, or NULL. */
const cw_auth_config_t *cw_config_auth(const cw_config_t *config, const char *id);

/* Whether words (a list key's value, "a,b"; NULL = none) holds word. */
bool cw_config_words_has(const char *words, const char *word);

/* "postgres", "mongodb"; "sqlite", "postgres", "mongodb". */
const char *cw_source_type_name(cw_source_type_t type);
const char *cw_target_type_name(cw_target_type_t type);

/*
 * Appends the effective configuration to out as YAML: every key with its
 * value (defaults included), passwords in URLs masked with cw_secret_mask and
 * api.token replaced by "****". The text loads back to the same settings
 * (with masked secrets). Returns 0.
 */
int cw_config_write_effective(const cw_config_t *config, cw_buf_t *out);

/*
 * Comparing two configurations (a reload, control/reload.h), key by key
 * through the key table: a key added to the table is compared too. a and b
 * are borrowed.
 *
 * cw_config_scope_equal: whether every key of scope holds the same in a and
 * b, lists item by item. scope is "" for cw_config_t, or a list's item
 * scope ("sources[].", "targets[].streams[].") for one item of it.
 */
bool cw_config_scope_equal(const char *scope, const void *a, const void *b);

/* Whether key path ("hub.url", "entities[].targets") holds the same in a and b, bases of its scope. */
bool cw_config_key_equal(const char *path, const void *a, const void *b);

/*
 * Calls changed(arg, path) for each top-level value key ("hub.url",
 * "log.level") and each top-level list ("sources") that differs.
 */
void cw_config_diff_top(const cw_config_t *a, const cw_config_t *b,
                        void (*changed)(void *arg, const char *path), void *arg);

/* Whether two authentication entries hold the same settings; NULL equals only NULL. */
bool cw_config_auth_equal(const cw_auth_config_t *a, const cw_auth_config_t *b);

/* Appends the reference (docs/configuration.md) generated from the key table. Returns 0. */
int cw_config_write_reference(cw_buf_t *out);

#endif
