/*
 * This file contains the database addresses declared in db_address.h, read
 * with the drivers' own URL parsers (libpq's PQconninfoParse, libmongoc's
 * mongoc_uri_t) so every form they accept reads the way they read it.
 */
#include "core/db_address.h"

#include "core/mem.h"

#include <ctype.h>
#include <libpq-fe.h>
#include <mongoc/mongoc.h>
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

int cw_db_address_mongodb(const char *url, cw_db_address_t *address, cw_err_t *err)
{
	bson_error_t error;
	mongoc_uri_t *uri = mongoc_uri_new_with_error(url, &error);
	if (uri == NULL)
		return cw_err_set(err, CW_EINVAL, DOMAIN, "invalid mongodb url: %s", error.message);
	const char *srv = mongoc_uri_get_srv_hostname(uri);
	if (srv != NULL) {
		char *name = normal_host(srv, strlen(srv));
		address->hosts = cw_xcalloc(1, sizeof *address->hosts);
		address->hosts[address->nhosts++] = cw_xasprintf("srv:%s", name);
		free(name);
	}
	for (const mongoc_host_list_t *h = mongoc_uri_get_hosts(uri); srv == NULL && h != NULL;
	     h = h->next) {
		char port[8];
		snprintf(port, sizeof port, "%u", h->port != 0 ? (unsigned)h->port : 27017u);
		add_host(address, h->host, strlen(h->host), port, strlen(port));
	}
	const char *database = mongoc_uri_get_database(uri);
	address->database = cw_xstrdup(database != NULL ? database : "");
	mongoc_uri_destroy(uri);
	return 0;
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
