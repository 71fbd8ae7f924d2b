/*
 * This file contains the MySQL source's connections (mysql_internal.h): the
 * mysql:// url, connecting with libmariadb, the set-up checks (each failing
 * with what to change), a table's columns and primary key from
 * information_schema (given to the decoder), and the binlog bytes the
 * server wrote past the stream's position.
 */
#include "capture/mysql_internal.h"

#include "core/auth.h"
#include "core/mem.h"

#include <errmsg.h>
#include <mysqld_error.h>

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- url ------------------------------------------------------------------ */

static char *decode_part(const char *s, size_t len)
{
	cw_buf_t out = CW_BUF_INIT;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '%' && i + 2 < len && isxdigit((unsigned char)s[i + 1]) &&
		    isxdigit((unsigned char)s[i + 2])) {
			char hex[3] = {s[i + 1], s[i + 2], '\0'};
			cw_buf_append_char(&out, (char)strtol(hex, NULL, 16));
			i += 2;
		} else {
			cw_buf_append_char(&out, s[i]);
		}
	}
	cw_buf_append_str(&out, "");
	return cw_buf_take(&out);
}

void my_url_clear(my_url_t *url)
{
	free(url->host);
	free(url->user);
	free(url->password);
	free(url->database);
	memset(url, 0, sizeof *url);
}

int my_url_parse(const char *text, my_url_t *url, cw_err_t *err)
{
	memset(url, 0, sizeof *url);
	if (text == NULL || strncmp(text, "mysql://", 8) != 0)
		return cw_err_set(err, CW_EINVAL, MY_DOMAIN, "a mysql url starts with mysql://");
	const char *p = text + 8, *end = p + strcspn(p, "/?");
	const char *at = NULL;
	for (const char *q = p; q < end; q++)
		if (*q == '@')
			at = q;
	if (at != NULL) {
		const char *colon = memchr(p, ':', (size_t)(at - p));
		url->user = decode_part(p, (size_t)((colon ? colon : at) - p));
		if (colon != NULL)
			url->password = decode_part(colon + 1, (size_t)(at - colon - 1));
		p = at + 1;
	}
	const char *colon = memchr(p, ':', (size_t)(end - p));
	url->host = decode_part(p, (size_t)((colon ? colon : end) - p));
	url->port = 3306;
	if (colon != NULL) {
		char *stop;
		long port = strtol(colon + 1, &stop, 10);
		if (stop != end || port < 1 || port > 65535) {
			my_url_clear(url);
			return cw_err_set(err, CW_EINVAL, MY_DOMAIN, "invalid port in mysql url");
		}
		url->port = (unsigned)port;
	}
	if (*end == '/')
		url->database = decode_part(end + 1, strcspn(end + 1, "?"));
	if (url->host[0] == '\0' || url->database == NULL || url->database[0] == '\0') {
		my_url_clear(url);
		return cw_err_set(err, CW_EINVAL, MY_DOMAIN,
		                  "a mysql url names a host and a database: mysql://user:password@host:3306/db");
	}
	return 0;
}

/* ---- connections and queries ---------------------------------------------------- */

/* TLS with auth's client certificate; the server's certificate verified against ca_file. */
static void use_certificate(MYSQL *conn, const cw_auth_config_t *auth)
{
	my_bool verify = 1;
	mysql_options(conn, MYSQL_OPT_SSL_KEY, auth->key_file);
	mysql_options(conn, MYSQL_OPT_SSL_CERT, auth->cert_file);
	mysql_options(conn, MYSQL_OPT_SSL_CA, auth->ca_file);
	mysql_options(conn, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify);
	if (auth->key_password != NULL)
		mysql_options(conn, MARIADB_OPT_TLS_PASSPHRASE, auth->key_password);
}

/* One attempt; *refused: the server refused the credentials it was given. */
static int connect_once(my_source_t *src, MYSQL **out, bool *refused, cw_err_t *err)
{
	char *secret = NULL;
	const char *user = src->url.user, *password = src->url.password;
	const cw_auth_config_t *auth = src->cfg->auth;
	int rc = 0;
	if (auth != NULL) {
		if ((rc = cw_auth_secret(auth, &secret, err)) != 0)
			return rc;
		if (auth->username != NULL)
			user = auth->username;
		if (secret != NULL || auth->type != CW_AUTH_CERTIFICATE)
			password = secret;   /* a certificate entry keeps the url's password, if any */
	}
	MYSQL *conn = mysql_init(NULL);
	if (auth != NULL && auth->type == CW_AUTH_CERTIFICATE)
		use_certificate(conn, auth);
	unsigned timeout = 10, read_timeout = 60;
	mysql_options(conn, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
	/* the stream gets a heartbeat at least every MY_HEARTBEAT_MS: a silent minute is a
	 * dead connection, and the run starts over instead of waiting for ever */
	mysql_options(conn, MYSQL_OPT_READ_TIMEOUT, &read_timeout);
	mysql_options(conn, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	if (mysql_real_connect(conn, src->url.host, user, password, src->url.database,
	                       src->url.port, NULL, 0) == NULL) {
		unsigned code = mysql_errno(conn);
		*refused = code == ER_ACCESS_DENIED_ERROR || code == ER_DBACCESS_DENIED_ERROR;
		char hint[CW_ERR_MESSAGE_LEN];
		cw_auth_failure_hint(auth, mysql_error(conn), hint, sizeof hint);
		rc = cw_err_set(err, *refused ? CW_EAUTH : CW_EDB, MY_DOMAIN,
		                "could not connect to mysql \"%s\": %s%s%s", src->masked_url,
		                mysql_error(conn), *refused ? ": fix the user and password of "
		                "sources[].url (or its authentication entry)" : "", hint);
		mysql_close(conn);
		conn = NULL;
	} else if ((rc = my_exec(src, conn, "SET time_zone = '+00:00'", "could not set the time zone",
	                         err)) != 0) {
		mysql_close(conn);
		conn = NULL;
	}
	cw_auth_secret_free(secret);
	*out = conn;
	return rc;
}

/*
 * When the server refuses the output of an authentication command, the
 * command runs again and the connection is tried once more before the
 * caller backs off.
 */
int my_connect(my_source_t *src, MYSQL **out, cw_err_t *err)
{
	bool refused = false;
	int rc = connect_once(src, out, &refused, err);
	if (rc != 0 && refused && cw_auth_refused(src->cfg->auth))
		rc = connect_once(src, out, &refused, err);
	return rc;
}

int my_exec(my_source_t *src, MYSQL *conn, const char *sql, const char *what, cw_err_t *err)
{
	if (mysql_query(conn, sql) != 0)
		return cw_err_set(err, CW_EDB, MY_DOMAIN, "source \"%s\": %s: %s", src->cfg->name, what,
		                  mysql_error(conn));
	MYSQL_RES *res = mysql_store_result(conn);
	mysql_free_result(res);
	return 0;
}

char *my_query_value(my_source_t *src, MYSQL *conn, const char *sql, const char *what,
                     cw_err_t *err)
{
	if (mysql_query(conn, sql) != 0) {
		cw_err_set(err, CW_EDB, MY_DOMAIN, "source \"%s\": %s: %s", src->cfg->name, what,
		           mysql_error(conn));
		return NULL;
	}
	MYSQL_RES *res = mysql_store_result(conn);
	MYSQL_ROW row = res != NULL ? mysql_fetch_row(res) : NULL;
	char *value = NULL;
	if (row == NULL)
		cw_err_set(err, CW_ENOTFOUND, MY_DOMAIN, "source \"%s\": %s: no row", src->cfg->name, what);
	else
		value = cw_xstrdup(row[0] != NULL ? row[0] : "");
	mysql_free_result(res);
	return value;
}

void my_quote_ident(cw_buf_t *buf, const char *name)
{
	cw_buf_append_char(buf, '`');
	for (const char *p = name; *p; p++) {
		if (*p == '`')
			cw_buf_append_char(buf, '`');
		cw_buf_append_char(buf, *p);
	}
	cw_buf_append_char(buf, '`');
}

/* Appends s as a quoted string literal. */
void my_quote_literal(MYSQL *conn, cw_buf_t *buf, const char *s)
{
	size_t len = strlen(s);
	char *escaped = cw_xmalloc(len * 2 + 1);
	mysql_real_escape_string(conn, escaped, s, (unsigned long)len);
	cw_buf_appendf(buf, "'%s'", escaped);
	free(escaped);
}

/* ---- set-up checks ------------------------------------------------------------------ */

static int check_variable(my_source_t *src, const char *name, const char *const *allowed,
                          const char *fix, cw_err_t *err)
{
	char sql[96];
	snprintf(sql, sizeof sql, "SELECT @@GLOBAL.%s", name);
	char *value = my_query_value(src, src->sql, sql, "could not read the server's settings", err);
	if (value == NULL)
		return CW_EDB;
	int rc = 0;
	bool ok = false;
	for (size_t i = 0; allowed[i] != NULL; i++)
		ok = ok || strcasecmp(value, allowed[i]) == 0;
	if (!ok)
		rc = cw_err_set(err, CW_EINVAL, MY_DOMAIN, "source \"%s\" has %s = %s: %s", src->cfg->name,
		                name, value, fix);
	free(value);
	return rc;
}

static int check_privileges(my_source_t *src, cw_err_t *err)
{
	if (mysql_query(src->sql, "SHOW GRANTS FOR CURRENT_USER()") != 0)
		return cw_err_set(err, CW_EDB, MY_DOMAIN, "source \"%s\": could not read the user's "
		                  "privileges: %s", src->cfg->name, mysql_error(src->sql));
	MYSQL_RES *res = mysql_store_result(src->sql);
	bool slave = false, client = false;
	MYSQL_ROW row;
	while (res != NULL && (row = mysql_fetch_row(res)) != NULL) {
		const char *g = row[0] != NULL ? row[0] : "";
		if (strstr(g, " ON *.*") == NULL)
			continue;
		bool all = strstr(g, "ALL PRIVILEGES") != NULL;
		slave = slave || all || strstr(g, "REPLICATION SLAVE") != NULL;
		client = client || all || strstr(g, "REPLICATION CLIENT") != NULL ||
		         strstr(g, "BINLOG MONITOR") != NULL || strstr(g, "SUPER") != NULL;
	}
	mysql_free_result(res);
	if (slave && client)
		return 0;
	return cw_err_set(err, CW_EINVAL, MY_DOMAIN, "source \"%s\": the user lacks %s%s%s: run GRANT "
	                  "REPLICATION SLAVE, %s ON *.* TO '%s'@'%%'; (and GRANT SELECT ON each "
	                  "entity's table)", src->cfg->name, slave ? "" : "REPLICATION SLAVE",
	                  !slave && !client ? " and " : "", client ? "" : (src->mariadb ?
	                  "BINLOG MONITOR" : "REPLICATION CLIENT"),
	                  src->mariadb ? "BINLOG MONITOR" : "REPLICATION CLIENT",
	                  src->url.user != NULL ? src->url.user : "cachewarp");
}

int my_check_setup(my_source_t *src, cw_err_t *err)
{
	static const char *const on[] = {"1", "ON", NULL};
	static const char *const row[] = {"ROW", NULL};
	static const char *const images[] = {"FULL", "MINIMAL", NULL};
	char *version = my_query_value(src, src->sql, "SELECT VERSION()", "could not read the version",
	                               err);
	if (version == NULL)
		return CW_EDB;
	src->mariadb = strstr(version, "MariaDB") != NULL;
	if (!src->mariadb) {
		int refused = cw_err_set(err, CW_EINVAL, MY_DOMAIN, "source \"%s\" is MySQL %s: "
		                         "cachewarp streams from MariaDB only for now (MySQL 8's GTID "
		                         "stream is not yet tested end to end against a server); "
		                         "entities in mode: batch need no stream", src->cfg->name,
		                         version);
		free(version);
		return refused;
	}
	free(version);
	int rc = check_variable(src, "log_bin", on, "turn the binary log on: log_bin = ON "
	                        "(log-bin=mysql-bin under [mysqld] in my.cnf) and restart the server",
	                        err);
	if (rc == 0)
		rc = check_variable(src, "binlog_format", row, "run SET GLOBAL binlog_format = 'ROW'; "
		                    "and set binlog_format = ROW in my.cnf", err);
	if (rc == 0)
		rc = check_variable(src, "binlog_row_image", images, "run SET GLOBAL binlog_row_image = "
		                    "'FULL'; and set binlog_row_image = FULL in my.cnf (MINIMAL works too)",
		                    err);
	if (rc == 0) {
		char *id = my_query_value(src, src->sql, "SELECT @@GLOBAL.server_id",
		                          "could not read server_id", err);
		if (id == NULL)
			rc = CW_EDB;
		else if (strcmp(id, "0") == 0)
			rc = cw_err_set(err, CW_EINVAL, MY_DOMAIN, "source \"%s\" has server_id = 0, and a "
			                "server with a binary log needs one: set server_id = 1 in my.cnf and "
			                "restart the server", src->cfg->name);
		free(id);
	}
	if (rc == 0)
		rc = check_privileges(src, err);
	return rc;
}

/* ---- tables ---------------------------------------------------------------------------- */

int my_prepare_table(my_source_t *src, my_entity_t *ent, cw_err_t *err)
{
	cw_buf_t sql = CW_BUF_INIT;
	cw_buf_append_str(&sql, "SELECT c.COLUMN_NAME, IFNULL(k.ORDINAL_POSITION, 0) "
	                  "FROM information_schema.COLUMNS c LEFT JOIN "
	                  "information_schema.KEY_COLUMN_USAGE k ON k.TABLE_SCHEMA = c.TABLE_SCHEMA "
	                  "AND k.TABLE_NAME = c.TABLE_NAME AND k.COLUMN_NAME = c.COLUMN_NAME AND "
	                  "k.CONSTRAINT_NAME = 'PRIMARY' WHERE c.TABLE_SCHEMA = ");
	my_quote_literal(src->sql, &sql, ent->schema);
	cw_buf_append_str(&sql, " AND c.TABLE_NAME = ");
	my_quote_literal(src->sql, &sql, ent->table);
	cw_buf_append_str(&sql, " ORDER BY c.ORDINAL_POSITION");
	int rc = 0;
	char **names = NULL;
	uint16_t key[CW_BINLOG_MAX_COLUMNS];
	long key_order[CW_BINLOG_MAX_COLUMNS];
	uint32_t ncolumns = 0, nkey = 0;
	MYSQL_RES *res = NULL;
	if (mysql_query(src->sql, sql.data) != 0 || (res = mysql_store_result(src->sql)) == NULL) {
		rc = cw_err_set(err, CW_EDB, MY_DOMAIN, "source \"%s\": could not read the columns of "
		                "%s.%s: %s", src->cfg->name, ent->schema, ent->table, mysql_error(src->sql));
		goto out;
	}
	names = cw_xcalloc(mysql_num_rows(res) + 1, sizeof *names);
	MYSQL_ROW row;
	while ((row = mysql_fetch_row(res)) != NULL && ncolumns < CW_BINLOG_MAX_COLUMNS) {
		long order = strtol(row[1], NULL, 10);
		if (order > 0) {
			size_t at = nkey;
			while (at > 0 && key_order[at - 1] > order) {   /* keep key order */
				key[at] = key[at - 1];
				key_order[at] = key_order[at - 1];
				at--;
			}
			key[at] = (uint16_t)ncolumns;
			key_order[at] = order;
			nkey++;
		}
		names[ncolumns++] = cw_xstrdup(row[0]);
	}
	if (ncolumns == 0) {
		rc = cw_err_set(err, CW_ENOTFOUND, MY_DOMAIN, "entity \"%s\": table %s.%s does not exist "
		                "(or the user of source \"%s\" may not see it: GRANT SELECT ON `%s`.`%s` "
		                "TO the user)", ent->entity.name, ent->schema, ent->table, src->cfg->name,
		                ent->schema, ent->table);
		goto out;
	}
	if (nkey == 0) {
		rc = cw_err_set(err, CW_EINVAL, MY_DOMAIN, "entity \"%s\": table %s.%s has no primary "
		                "key: add one (ALTER TABLE `%s`.`%s` ADD PRIMARY KEY (...))",
		                ent->entity.name, ent->schema, ent->table, ent->schema, ent->table);
		goto out;
	}
	cw_buf_reset(&sql);
	cw_buf_append_str(&sql, "SELECT 1 FROM ");
	my_quote_ident(&sql, ent->schema);
	cw_buf_append_char(&sql, '.');
	my_quote_ident(&sql, ent->table);
	cw_buf_append_str(&sql, " LIMIT 0");
	if (mysql_query(src->sql, sql.data) != 0) {
		rc = cw_err_set(err, mysql_errno(src->sql) == ER_TABLEACCESS_DENIED_ERROR ? CW_EINVAL :
		                CW_EDB, MY_DOMAIN, "entity \"%s\": could not read table %s.%s: %s: GRANT "
		                "SELECT ON `%s`.`%s` TO the user of source \"%s\"", ent->entity.name,
		                ent->schema, ent->table, mysql_error(src->sql), ent->schema, ent->table,
		                src->cfg->name);
		goto out;
	}
	mysql_free_result(mysql_store_result(src->sql));
	rc = cw_binlog_set_table(src->dec, ent->schema, ent->table, (const char *const *)names,
	                         ncolumns, key, nkey, err);
out:
	for (uint32_t i = 0; names != NULL && i < ncolumns; i++)
		free(names[i]);
	free(names);
	mysql_free_result(res);
	cw_buf_free(&sql);
	return rc;
}

void my_measure_lag(my_source_t *src)
{
	if (src->file[0] == '\0' || src->sql == NULL ||
	    mysql_query(src->sql, "SHOW BINARY LOGS") != 0)
		return;
	MYSQL_RES *res = mysql_store_result(src->sql);
	MYSQL_ROW row;
	bool seen = false;
	int64_t bytes = 0;
	while (res != NULL && (row = mysql_fetch_row(res)) != NULL) {
		int64_t size = row[1] != NULL ? strtoll(row[1], NULL, 10) : 0;
		if (strcmp(row[0], src->file) == 0) {
			seen = true;
			bytes += size > (int64_t)src->file_pos ? size - (int64_t)src->file_pos : 0;
		} else if (seen) {
			bytes += size;
		}
	}
	mysql_free_result(res);
	if (seen)
		src->lag_bytes = bytes;
}
