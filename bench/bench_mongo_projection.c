/*
 * Benchmark (figures, never assertions) of the MongoDB capture's per-event
 * CPU work: projecting a ~200-byte BSON document onto a 5-column shape and
 * computing its doc_id, as mongo_push_upsert does for every change event.
 * Goal: under 2 µs per event. The same shape over a PostgreSQL
 * row's JSON text (the PostgreSQL source's path for entities with columns)
 * is measured next to it.
 *
 *   build/bench.mongo_projection [iterations]
 */
#include "benchlib.h"
#include "core/buf.h"
#include "core/entity.h"
#include "core/projection.h"

#include <bson/bson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef PROJECT_JSON
#define PROJECT_JSON cw_projection_json
#endif

int main(int argc, char **argv)
{
	long iterations = argc > 1 ? atol(argv[1]) : 2000000;
	cw_column_t columns[] = {
		{"title", CW_COL_TEXT, "title"},
		{"price", CW_COL_NUMBER, "pricing.amount"},
		{"stock", CW_COL_INTEGER, "stock"},
		{"active", CW_COL_BOOL, "active"},
		{"tags", CW_COL_JSONB, "tags"},
	};
	cw_entity_t entity = {"products", "shop", "products", NULL, columns, 5, CW_ENTITY_LIVE, 1, NULL, 0,
	CW_ENTITY_MODE_STREAM, {0}, CW_ENTITY_ORIGIN_UNKNOWN, NULL, 0};
	cw_err_t err = {0};
	cw_projection_t *proj = cw_projection_new(&entity, CW_PROJECTION_MISSING_NULL, &err);
	if (proj == NULL) {
		fprintf(stderr, "bench: %s\n", err.message);
		return 1;
	}
	bson_oid_t oid;
	bson_oid_init_from_string(&oid, "65a1b2c3d4e5f60718293a4b");
	bson_t *doc = BCON_NEW("_id", BCON_OID(&oid), "title", BCON_UTF8("Desk lamp with a long arm"),
	                       "pricing", "{", "amount", BCON_DOUBLE(49.95), "currency", BCON_UTF8("EUR"), "}",
	                       "stock", BCON_INT32(120), "active", BCON_BOOL(true),
	                       "tags", "[", BCON_UTF8("home"), BCON_UTF8("light"), BCON_UTF8("office"), "]",
	                       "description", BCON_UTF8("Adjustable, warm white, 3 brightness levels."),
	                       "updated", BCON_DATE_TIME(1714564800000));
	cw_buf_t out = CW_BUF_INIT;
	double started = cw_bench_now_s();
	for (long i = 0; i < iterations; i++) {
		if (cw_projection_bson(proj, doc, &out, &err) != 0) {
			fprintf(stderr, "bench: projection failed: %s\n", err.message);
			return 1;
		}
	}
	double projection_s = cw_bench_now_s() - started;
	started = cw_bench_now_s();
	for (long i = 0; i < iterations; i++)
		free(cw_projection_doc_id_of(doc, NULL));
	double doc_id_s = cw_bench_now_s() - started;
	printf("mongo projection: %u-byte document, 5 columns -> %zu bytes of JSON, %ld events\n",
	       doc->len, out.len, iterations);
	printf("  projection      %.3f us/event (%.0f events/s)\n",
	       projection_s / (double)iterations * 1e6, (double)iterations / projection_s);
	printf("  doc_id          %.3f us/event\n", doc_id_s / (double)iterations * 1e6);
	printf("  both            %.3f us/event\n",
	       (projection_s + doc_id_s) / (double)iterations * 1e6);
	cw_bench_figure("mongo projection", "per document", "ns",
	                (projection_s + doc_id_s) / (double)iterations * 1e9, NULL);
	const char *row = "{\"id\":1,\"title\":\"Desk lamp with a long arm\",\"pricing\":"
	                  "{\"amount\": 49.95, \"currency\": \"EUR\"},\"stock\":120,\"active\":true,"
	                  "\"tags\":[\"home\",\"light\",\"office\"],\"description\":"
	                  "\"Adjustable, warm white, 3 brightness levels.\",\"updated\":"
	                  "\"2024-05-01 12:00:00+00\"}";
	started = cw_bench_now_s();
	for (long i = 0; i < iterations; i++) {
		if (PROJECT_JSON(proj, row, &out, &err) != 0) {
			fprintf(stderr, "bench: projection failed: %s\n", err.message);
			return 1;
		}
	}
	double row_s = cw_bench_now_s() - started;
	printf("postgres row projection: %zu-byte row, 5 columns -> %zu bytes of JSON\n",
	       strlen(row), out.len);
	printf("  projection      %.3f us/row (%.0f rows/s)\n", row_s / (double)iterations * 1e6,
	       (double)iterations / row_s);
	cw_bench_figure("postgres row projection", "per row", "ns",
	                row_s / (double)iterations * 1e9, NULL);
	cw_buf_free(&out);
	bson_destroy(doc);
	cw_projection_free(proj);
	return 0;
}
