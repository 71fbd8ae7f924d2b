/*
 * This file contains verify's MySQL and MariaDB sources (sides_internal.h):
 * the table read in primary key order inside one consistent snapshot, each
 * row turned into a change's doc_id and data by the MySQL snapshot's own
 * code (capture/mysql_snapshot.c: the same SELECT list, the same values as
 * the binlog decoder writes them), then the entity's projection.
 */
#include "verify/sides_internal.h"

#include "capture/mysql_internal.h"
#include "core/mem.h"
#include "core/secret.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a MySQL source side holds besides the endpoint. */
struct vs_mysql {
	my_source_t src;            /* only what the snapshot's helpers read: cfg, url, sql */
	my_entity_t ent;
	my_scan_col_t *cols;
	size_t ncols;
	uint16_t key[CW_BINLOG_MAX_COLUMNS];
	size_t nkey;
	char *select;               /* every row in key order */
};

void vs_mysql_free(struct vs_mysql *my)
{
	if (my == NULL)
		return;
	if (my->src.sql != NULL)
		mysql_close(my->src.sql);
	my_scan_columns_free(my->cols, my->ncols);
	cw_projection_free(my->ent.proj);
	cw_entity_clear(&my->ent.entity);
	my_url_clear(&my->src.url);
	free(my->src.masked_url);
	free(my->select);
	free(my);
}

static int my_error(struct vs_mysql *my, const char *what, cw_err_t *err)
{
	return cw_err_set(err, CW_EDB, VS_DOMAIN, "%s of entity \"%s\": %s", what,
	                  my->ent.entity.name, mysql_error(my->src.sql));
}

/* Calls on_row for each row of one key-ordered read, as the snapshot turns it into a change. */
static int mysql_read(void *self, cw_verify_want_fn want, void *want_arg, cw_verify_row_fn on_row,
                      void *arg, cw_cancel_t *cancel, cw_err_t *err)
{
	cw_verify_endpoint_t *ep = self;
	struct vs_mysql *my = ep->mysql;
	MYSQL *conn = my->src.sql;
	MYSQL_RES *res = NULL;
	cw_buf_t scratch = CW_BUF_INIT, projected = CW_BUF_INIT;
	uint64_t *columns = cw_xcalloc(ep->ncolumns + 1, sizeof *columns);
	int rc = 0;
	if (mysql_query(conn, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY") != 0 ||
	    mysql_query(conn, my->select) != 0 || (res = mysql_use_result(conn)) == NULL) {
		rc = my_error(my, "could not read the table", err);
		goto out;
	}
	MYSQL_ROW row;
	uint64_t seen = 0;
	while (rc == 0 && (row = mysql_fetch_row(res)) != NULL) {
		if ((++seen & 0xfff) == 0 && cw_cancel_is_set(cancel)) {
			rc = cw_err_set(err, CW_ECANCELED, VS_DOMAIN, "verify was canceled");
			break;
		}
		cw_binlog_row_t change;
		/* A row capture cannot read (it quarantines it) is not compared. */
		if (my_scan_row(&my->ent, my->cols, my->ncols, my->key, my->nkey, row,
		                mysql_fetch_lengths(res), &change, &scratch, NULL) != 0)
			continue;
		const char *data = change.data;
		bool wanted = want == NULL || want(want_arg, change.doc_id);
		if (wanted && my->ent.proj != NULL) {
			cw_buf_reset(&projected);
			wanted = cw_projection_json(my->ent.proj, change.data, &projected, NULL) == 0;
			data = cw_buf_cstr(&projected);
		}
		if (wanted) {
			cw_verify_row_t vrow = {change.doc_id, 0, ep->ncolumns > 0 ? columns : NULL,
			                        ep->ncolumns, false, data};
			rc = vs_source_digest(ep, change.doc_id, data, &vrow.digest, columns, err);
			if (rc == 0)
				rc = on_row(arg, &vrow);
			else if (ep->form != FORM_VALUES && rc == CW_EINVAL)
				rc = 0;   /* the target quarantines what it cannot build */
		}
		cw_binlog_row_clear(&change);
	}
	if (rc == 0 && mysql_errno(conn) != 0)
		rc = my_error(my, "could not read the table", err);
out:
	mysql_free_result(res);   /* reads what is left of an interrupted result */
	mysql_query(conn, "COMMIT");
	cw_buf_free(&scratch);
	cw_buf_free(&projected);
	free(columns);
	return rc;
}

int vs_mysql_position(cw_verify_endpoint_t *ep, char **gtid, cw_err_t *err)
{
	struct vs_mysql *my = ep->mysql;
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	if (mysql_query(my->src.sql, "SELECT @@gtid_binlog_pos") != 0 ||
	    (res = mysql_store_result(my->src.sql)) == NULL || (row = mysql_fetch_row(res)) == NULL) {
		mysql_free_result(res);
		return my_error(my, "could not read the source's GTID position", err);
	}
	*gtid = cw_xstrdup(row[0] != NULL ? row[0] : "");
	mysql_free_result(res);
	return 0;
}

bool cw_verify_gtid_covers(const char *stored, const char *source)
{
	my_position_t have, want;
	if (my_position_parse(stored, &have, NULL) != 0 || my_position_parse(source, &want, NULL) != 0)
		return false;
	for (size_t i = 0; i < want.count; i++) {
		bool covered = false;
		for (size_t j = 0; j < have.count && !covered; j++)
			covered = have.gtids[j].domain_id == want.gtids[i].domain_id &&
			          have.gtids[j].seq >= want.gtids[i].seq;
		if (!covered)
			return false;
	}
	return true;
}

/* The table's schema and name: "db.table", or the url's database for one part. */
static int table_of(struct vs_mysql *my, cw_err_t *err)
{
	const char *table = my->ent.entity.table;
	if (cw_entity_table_parse(table, my->ent.schema, my->ent.table, err) != 0)
		return CW_EINVAL;
	if (strchr(table, '.') == NULL && my->src.url.database != NULL)
		snprintf(my->ent.schema, sizeof my->ent.schema, "%s", my->src.url.database);
	return 0;
}

cw_verify_endpoint_t *vs_mysql_source_open(const cw_source_config_t *source,
                                           const cw_entity_t *entity,
                                           const cw_target_config_t *target, cw_err_t *err)
{
	cw_verify_endpoint_t *ep = vs_endpoint_new(EP_MYSQL_SOURCE, entity, target->decimal_handling);
	ep->side.read = mysql_read;
	struct vs_mysql *my = ep->mysql = cw_xcalloc(1, sizeof *my);
	my->src.cfg = source;
	my->src.masked_url = cw_secret_mask(source->url);
	cw_entity_copy(&my->ent.entity, entity);
	cw_buf_t select = CW_BUF_INIT, order = CW_BUF_INIT, sql = CW_BUF_INIT;
	int rc = my_url_parse(source->url, &my->src.url, err);
	if (rc == 0)
		rc = table_of(my, err);
	if (rc == 0 && entity->ncolumns > 0 &&
	    (my->ent.proj = cw_projection_new(entity, CW_PROJECTION_DEFAULT, err)) == NULL)
		rc = CW_EINVAL;
	if (rc == 0)
		rc = my_connect(&my->src, &my->src.sql, err);
	if (rc == 0)
		rc = my_scan_columns(&my->src, my->src.sql, &my->ent, &my->cols, &my->ncols, &select,
		                     err);
	if (rc == 0 && my->ncols == 0)
		rc = cw_err_set(err, CW_ENOTFOUND, VS_DOMAIN, "entity \"%s\": source \"%s\" has no "
		                "table %s.%s", entity->name, source->name, my->ent.schema, my->ent.table);
	if (rc == 0 &&
	    (my->nkey = my_scan_key(&my->src, &my->ent, my->cols, my->ncols, my->key, &order)) == 0)
		rc = cw_err_set(err, CW_EINVAL, VS_DOMAIN, "table %s of entity \"%s\" has no primary "
		                "key: rows cannot be told apart", entity->table, entity->name);
	if (rc == 0) {
		cw_buf_appendf(&sql, "SELECT %s FROM ", select.data);
		my_quote_ident(&sql, my->ent.schema);
		cw_buf_append_char(&sql, '.');
		my_quote_ident(&sql, my->ent.table);
		cw_buf_appendf(&sql, " ORDER BY %s", order.data);
		my->select = cw_buf_take(&sql);
	}
	cw_buf_free(&select);
	cw_buf_free(&order);
	cw_buf_free(&sql);
	if (rc != 0) {
		cw_verify_endpoint_close(ep);
		return NULL;
	}
	return ep;
}
