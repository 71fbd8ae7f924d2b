/*
 * This file contains the database addresses declared in db_address.h. A
 * PostgreSQL url or conninfo string is read by libpq's own parser
 * (PQconninfoParse), so every form libpq accepts reads as libpq reads it. A
 * MongoDB url is split here, as the connection string format defines it:
 * libmongoc's parser logs to standard error what it refuses, and a
 * configuration check must not print driver log lines.
 */
#include "core/db_address.h"

#include "core/mem.h"

#include <ctype.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOMAIN "config"

/* The canonical host: lower case, and every name of the local host "localhost". */
static char *normal_host(const char *host, size_t len)
{
	char *lower = cw_xstrndup(host, len);
	for (char *p = lower; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if (lower[0] == '\0' || lower[0] == '/' || strcmp(lower, "127.0.0.1") == 0 ||
	    strcmp(lower, "::1") == 0 || strcmp(lower, "[::1]") == 0) {
		free(lower);
		lower = cw_xstrdup("localhost");
	}
	return lower;
}

static void add_host(cw_db_address_t *address, const char *host, size_t host_len,
                     const char *port, size_t port_len)
{
	char *name = normal_host(host, host_len);
	address->hosts = cw_xrealloc(address->hosts, (address->nhosts + 1) * sizeof *address->hosts);
	address->hosts[address->nhosts++] = cw_xasprintf("%s:%.*s", name, (int)port_len, port);
	free(name);
}

/* The i-th comma-separated item of list (NULL = ""), as a span. */
static const char *list_item(const char *list, size_t i, size_t *len)
{
	const char *p = list != NULL ? list : "";
	for (; i > 0 && p != NULL; i--) {
		p = strchr(p, ',');
		p = p != NULL ? p + 1 : NULL;
	}
	if (p == NULL) {
		*len = 0;
		return "";
	}
	*len = strcspn(p, ",");
	return p;
}

static size_t list_count(const char *list)
{
	size_t n = 1;
	for (const char *p = list != NULL ? list : ""; (p = strchr(p, ',')) != NULL; p++)
		n++;
	return n;
}

int cw_db_address_postgres(const char *url, cw_db_address_t *address, cw_err_t *err)
{
	char *message = NULL;
	PQconninfoOption *options = PQconninfoParse(url, &message);
	if (options == NULL) {
		size_t len = message != NULL ? strcspn(message, "\n") : 0;
		cw_err_set(err, CW_EINVAL, DOMAIN, "invalid postgres url: %.*s", (int)len,
		           message != NULL ? message : "out of memory");
		PQfreemem(message);
		return CW_EINVAL;
	}
	const char *host = NULL, *hostaddr = NULL, *port = NULL, *dbname = NULL, *user = NULL;
	for (PQconninfoOption *o = options; o->keyword != NULL; o++) {
		const char *value = o->val != NULL && o->val[0] != '\0' ? o->val : NULL;
		if (strcmp(o->keyword, "host") == 0)
			host = value;
		else if (strcmp(o->keyword, "hostaddr") == 0)
			hostaddr = value;
		else if (strcmp(o->keyword, "port") == 0)
			port = value;
		else if (strcmp(o->keyword, "dbname") == 0)
			dbname = value;
		else if (strcmp(o->keyword, "user") == 0)
			user = value;
	}
	/* libpq connects to hostaddr when given (host then only names it for TLS). */
	const char *hosts = hostaddr != NULL ? hostaddr : host;
	size_t nhosts = list_count(hosts), nports = list_count(port);
	for (size_t i = 0; i < nhosts; i++) {
		size_t host_len, port_len;
		const char *h = list_item(hosts, i, &host_len);
		const char *p = list_item(port, nports == 1 ? 0 : i, &port_len);
		if (port_len == 0) {
			p = "5432";
			port_len = 4;
		}
		add_host(address, h, host_len, p, port_len);
	}
	address->database = cw_xstrdup(dbname != NULL ? dbname : user != NULL ? user : "");
	PQconninfoFree(options);
	return 0;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The len bytes of text with every %XX decoded; a new string owned by the caller. */
static char *percent_decode(const char *text, size_t len)
{
	char *out = cw_xstrndup(text, len);
	size_t w = 0;
	for (size_t i = 0; i < len; i++) {
		if (text[i] == '%' && i + 2 < len && hex_digit(text[i + 1]) >= 0 &&
		    hex_digit(text[i + 2]) >= 0) {
			out[w++] = (char)(hex_digit(text[i + 1]) * 16 + hex_digit(text[i + 2]));
			i += 2;
		} else {
			out[w++] = text[i];
		}
	}
	out[w] = '\0';
	return out;
}
/* Adds one host of a mongodb url, "host", "host:port" or "[v6]:port"; false when malformed. */
static bool add_mongodb_host(cw_db_address_t *address, const char *text, size_t len)
{
	char *host = percent_decode(text, len);
	const char *name = host, *port = "";
	size_t name_len = strlen(host);
	bool ok = name_len > 0;
	if (host[0] == '[') {
		char *close = strchr(host, ']');
		ok = close != NULL && (close[1] == '\0' || close[1] == ':');
		if (ok) {
			name = host + 1;
			name_len = (size_t)(close - name);
			port = close[1] == ':' ? close + 2 : "";
		}
	} else if (host[0] != '/' && strchr(host, ':') != NULL) {
		char *colon = strchr(host, ':');
		ok = strchr(colon + 1, ':') == NULL;
		name_len = (size_t)(colon - host);
		port = colon + 1;
	}
	size_t digits = strspn(port, "0123456789");
	if (port[0] != '\0')
		ok = ok && digits == strlen(port) && digits <= 5 && atoi(port) >= 1 && atoi(port) <= 65535;
	if (ok)
		add_host(address, name, name_len, port[0] ? port : "27017", strlen(port[0] ? port : "27017"));
	free(host);
	return ok;
}

int cw_db_address_mongodb(const char *url, cw_db_address_t *address, cw_err_t *err)
{
	bool srv = strncmp(url, "mongodb+srv://", 14) == 0;
	if (!srv && strncmp(url, "mongodb://", 10) != 0)
		return cw_err_set(err, CW_EINVAL, DOMAIN,
		                  "invalid mongodb url: it starts with mongodb:// or mongodb+srv://");
	const char *authority = url + (srv ? 14 : 10);
	size_t authority_len = strcspn(authority, "/?#");
	/* The last '@' ends the userinfo (a password's own '@' must be %40 anyway). */
	const char *hosts = authority;
	for (const char *p = authority; p < authority + authority_len; p++)
		if (*p == '@')
			hosts = p + 1;
	size_t hosts_len = (size_t)(authority + authority_len - hosts);
	int rc = 0;
	if (srv && (hosts_len == 0 || memchr(hosts, ',', hosts_len) || memchr(hosts, ':', hosts_len))) {
		rc = cw_err_set(err, CW_EINVAL, DOMAIN,
		                "invalid mongodb url: a mongodb+srv url names one host without a port");
	} else if (srv) {
		char *name = percent_decode(hosts, hosts_len);
		char *lower = normal_host(name, strlen(name));
		address->hosts = cw_xcalloc(1, sizeof *address->hosts);
		address->hosts[address->nhosts++] = cw_xasprintf("srv:%s", lower);
		free(lower);
		free(name);
	}
	for (const char *p = hosts; !srv && rc == 0 && p <= hosts + hosts_len; p++) {
		size_t len = strcspn(p, ",/?#");
		if (p + len > hosts + hosts_len)
			len = (size_t)(hosts + hosts_len - p);
		if (!add_mongodb_host(address, p, len))
			rc = cw_err_set(err, CW_EINVAL, DOMAIN, "invalid mongodb url: host %zu is not "
			                "HOST, HOST:PORT or [IPv6]:PORT", address->nhosts + 1);
		p += len;
	}
	const char *path = authority + authority_len;
	if (rc == 0)
		address->database = *path == '/' ? percent_decode(path + 1, strcspn(path + 1, "?#"))
		                                 : cw_xstrdup("");
	else
		cw_db_address_clear(address);
	return rc;
}

bool cw_db_address_same(const cw_db_address_t *a, const cw_db_address_t *b)
{
	if (a->database == NULL || b->database == NULL || strcmp(a->database, b->database) != 0)
		return false;
	for (size_t i = 0; i < a->nhosts; i++)
		for (size_t j = 0; j < b->nhosts; j++)
			if (strcmp(a->hosts[i], b->hosts[j]) == 0)
				return true;
	return false;
}

void cw_db_address_clear(cw_db_address_t *address)
{
	if (address == NULL)
		return;
	for (size_t i = 0; i < address->nhosts; i++)
		free(address->hosts[i]);
	free(address->hosts);
	free(address->database);
	*address = (cw_db_address_t){0};
}
