/*
 * Benchmark (figures, never assertions) of the kazaam transformation engine:
 * documents per second of a typical spec (a shift of six fields, a default,
 * a delete) over small product documents (~230 bytes), one thread, the spec
 * compiled once. The same spec and documents through the real kazaam (Go,
 * tests/fixtures/kazaam-ref, when `make deps` has built it) are the
 * reference, measured in the same run.
 *
 *   build/bench.kazaam [documents]      (default 1000000; CW_BENCH_KAZAAM_DOCS too)
 */
#include "benchlib.h"
#include "core/buf.h"
#include "transform/kazaam.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DISTINCT_DOCS 1000

static const char spec[] =
	"[{\"operation\":\"shift\",\"spec\":{\"id\":\"_id\",\"title\":\"title\","
	"\"price\":\"pricing.amount\",\"currency\":\"pricing.currency\",\"tags\":\"tags\","
	"\"first_tag\":\"tags[0]\"}},"
	"{\"operation\":\"default\",\"spec\":{\"source\":\"shop\",\"schema\":2}},"
	"{\"operation\":\"delete\",\"spec\":{\"paths\":[\"tags\"]}}]";

static void make_doc(long i, cw_buf_t *out)
{
	cw_buf_appendf(out,
	               "{\"_id\":\"p-%ld\",\"title\":\"Desk lamp %ld\",\"pricing\":{\"amount\":%ld.%02ld,"
	               "\"currency\":\"EUR\"},\"stock\":%ld,\"active\":%s,"
	               "\"tags\":[\"home\",\"light\",\"office\"],"
	               "\"description\":\"Adjustable, warm white, 3 brightness levels.\"}",
	               i, i, 10 + i % 90, i % 100, i * 7 % 500, i % 2 ? "true" : "false");
}

/* Documents per second of the Go kazaam over the same spec and documents, or -1. */
static double go_reference(long documents, cw_buf_t *const docs)
{
	const char *support = getenv("CW_SUPPORT_DIR");
	char bin[1024];
	snprintf(bin, sizeof bin, "%s/../fixtures/kazaam-ref/bin/kazaam-ref",
	         support != NULL ? support : "tests/support");
	if (access(bin, X_OK) != 0) {
		fprintf(stderr, "bench: %s is not built (make deps): no Go reference\n", bin);
		return -1;
	}
	char input[] = "/tmp/cw-bench-kazaam-XXXXXX";
	int fd = mkstemp(input);
	if (fd < 0)
		return -1;
	FILE *f = fdopen(fd, "w");
	fprintf(f, "%s\n", spec);
	for (long i = 0; i < DISTINCT_DOCS; i++)
		fprintf(f, "%s\n", docs[i].data);
	fclose(f);
	char command[2200];
	snprintf(command, sizeof command, "'%s' bench %ld < '%s'", bin, documents, input);
	FILE *p = popen(command, "r");
	double per_s = -1;
	if (p != NULL) {
		if (fscanf(p, "documents_per_second %lf", &per_s) != 1)
			per_s = -1;
		pclose(p);
	}
	unlink(input);
	return per_s;
}

int main(int argc, char **argv)
{
	long documents = argc > 1 ? atol(argv[1])
	                          : cw_bench_env_long("CW_BENCH_KAZAAM_DOCS", 1000000, 1, 1000000000);
	cw_err_t err = {0};
	cw_kazaam_t *kazaam = cw_kazaam_compile(spec, strlen(spec), &err);
	if (kazaam == NULL) {
		fprintf(stderr, "bench: %s\n", err.message);
		return 1;
	}
	cw_buf_t *docs = calloc(DISTINCT_DOCS, sizeof *docs);
	for (long i = 0; i < DISTINCT_DOCS; i++)
		make_doc(i, &docs[i]);
	cw_buf_t out = CW_BUF_INIT;
	size_t out_bytes = 0;
	double cpu = cw_bench_cpu_s(0), started = cw_bench_now_s();
	for (long i = 0; i < documents; i++) {
		const cw_buf_t *doc = &docs[i % DISTINCT_DOCS];
		cw_buf_reset(&out);
		if (cw_kazaam_apply(kazaam, doc->data, doc->len, NULL, &out, &err) != 0) {
			fprintf(stderr, "bench: transformation failed: %s\n", err.message);
			return 1;
		}
		out_bytes += out.len;
	}
	double elapsed = cw_bench_now_s() - started;
	cpu = cw_bench_cpu_s(0) - cpu;
	printf("kazaam engine: %ld documents in %.2f s (%.2f CPU s), %.0f documents/s, "
	       "%.2f us/document, %zu bytes out; last: %s\n",
	       documents, elapsed, cpu, documents / elapsed, elapsed * 1e6 / documents, out_bytes,
	       cw_buf_cstr(&out));
	double go = go_reference(documents, docs);
	if (go > 0) {
		printf("kazaam (Go, v3.4.8): %.0f documents/s\n", go);
		cw_bench_figure("kazaam", "go_kazaam", "docs/s", go, NULL);
	}
	cw_bench_figure("kazaam", "cachewarp", "docs/s", documents / elapsed,
	                go > 0 ? "kazaam/go_kazaam" : NULL);
	cw_bench_figure("kazaam", "cachewarp_us_per_doc", "us", elapsed * 1e6 / documents, NULL);
	/* on a shared machine the CPU time says more than the wall clock */
	cw_bench_figure("kazaam", "cachewarp_per_cpu_s", "docs/CPU s", documents / cpu, NULL);
	cw_buf_free(&out);
	for (long i = 0; i < DISTINCT_DOCS; i++)
		cw_buf_free(&docs[i]);
	free(docs);
	cw_kazaam_free(kazaam);
	return 0;
}
