/* This file contains the metrics registry declared in metrics.h. */
#include "core/metrics.h"

#include "core/json.h"
#include "core/mem.h"

#include <pthread.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static const double default_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                         0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define NBUCKETS (sizeof default_buckets / sizeof default_buckets[0])

typedef struct series {
	char *labels;                 /* "" for none */
	double value;                 /* counter, gauge; histogram: sum */
	uint64_t count;               /* histogram */
	uint64_t buckets[NBUCKETS];   /* histogram, not cumulative */
	struct series *next;
} series_t;

typedef struct family {
	char *name;
	char *help;                   /* NULL when undeclared */
	cw_metric_type_t type;
	series_t *series;             /* in insertion order */
	series_t *last;
} family_t;

struct cw_metrics {
	pthread_mutex_t mutex;
	family_t *families;
	size_t nfamilies;
	size_t cap;
};

cw_metrics_t *cw_metrics_new(void)
{
	cw_metrics_t *metrics = cw_xcalloc(1, sizeof *metrics);
	pthread_mutex_init(&metrics->mutex, NULL);
	return metrics;
}

void cw_metrics_free(cw_metrics_t *metrics)
{
	if (metrics == NULL)
		return;
	for (size_t i = 0; i < metrics->nfamilies; i++) {
		family_t *f = &metrics->families[i];
		for (series_t *s = f->series, *next = NULL; s != NULL; s = next) {
			next = s->next;
			free(s->labels);
			free(s);
		}
		free(f->name);
		free(f->help);
	}
	free(metrics->families);
	pthread_mutex_destroy(&metrics->mutex);
	free(metrics);
}

/* Under the mutex. */
static family_t *family_get(cw_metrics_t *metrics, const char *name, cw_metric_type_t type)
{
	for (size_t i = 0; i < metrics->nfamilies; i++)
		if (strcmp(metrics->families[i].name, name) == 0)
			return &metrics->families[i];
	if (metrics->nfamilies == metrics->cap) {
		metrics->cap = metrics->cap ? metrics->cap * 2 : 16;
		metrics->families = cw_xrealloc(metrics->families, metrics->cap * sizeof *metrics->families);
	}
	family_t *f = &metrics->families[metrics->nfamilies++];
	memset(f, 0, sizeof *f);
	f->name = cw_xstrdup(name);
	f->type = type;
	return f;
}

/* Under the mutex. */
static series_t *series_get(family_t *f, const char *labels)
{
	if (labels == NULL)
		labels = "";
	for (series_t *s = f->series; s != NULL; s = s->next)
		if (strcmp(s->labels, labels) == 0)
			return s;
	series_t *s = cw_xcalloc(1, sizeof *s);
	s->labels = cw_xstrdup(labels);
	if (f->last)
		f->last->next = s;
	else
		f->series = s;
	f->last = s;
	return s;
}

void cw_metrics_declare(cw_metrics_t *metrics, const char *name, cw_metric_type_t type,
                        const char *help)
{
	pthread_mutex_lock(&metrics->mutex);
	family_t *f = family_get(metrics, name, type);
	if (f->help == NULL && help != NULL) {
		f->help = cw_xstrdup(help);
		f->type = type;
	}
	pthread_mutex_unlock(&metrics->mutex);
}

void cw_metrics_counter_add(cw_metrics_t *metrics, const char *name, const char *labels,
                            double delta)
{
	pthread_mutex_lock(&metrics->mutex);
	series_get(family_get(metrics, name, CW_METRIC_COUNTER), labels)->value += delta;
	pthread_mutex_unlock(&metrics->mutex);
}

void cw_metrics_gauge_set(cw_metrics_t *metrics, const char *name, const char *labels,
                          double value)
{
	pthread_mutex_lock(&metrics->mutex);
	series_get(family_get(metrics, name, CW_METRIC_GAUGE), labels)->value = value;
	pthread_mutex_unlock(&metrics->mutex);
}

void cw_metrics_observe(cw_metrics_t *metrics, const char *name, const char *labels,
                        double value)
{
	pthread_mutex_lock(&metrics->mutex);
	series_t *s = series_get(family_get(metrics, name, CW_METRIC_HISTOGRAM), labels);
	s->value += value;
	s->count++;
	for (size_t i = 0; i < NBUCKETS; i++) {
		if (value <= default_buckets[i]) {
			s->buckets[i]++;
			break;
		}
	}
	pthread_mutex_unlock(&metrics->mutex);
}

double cw_metrics_value(cw_metrics_t *metrics, const char *name, const char *labels)
{
	double value = 0;
	pthread_mutex_lock(&metrics->mutex);
	for (size_t i = 0; i < metrics->nfamilies; i++) {
		family_t *f = &metrics->families[i];
		if (strcmp(f->name, name) != 0)
			continue;
		for (series_t *s = f->series; s != NULL; s = s->next)
			if (strcmp(s->labels, labels ? labels : "") == 0)
				value = s->value;
	}
	pthread_mutex_unlock(&metrics->mutex);
	return value;
}

static void append_number(cw_buf_t *out, double value)
{
	char text[CW_JSON_DOUBLE_LEN];
	size_t n = cw_json_format_double(value, text);
	if (n == 0)
		cw_buf_append_str(out, value != value ? "NaN" : value > 0 ? "+Inf" : "-Inf");
	else
		cw_buf_append(out, text, n);
}

/* name{labels,extra} — either part may be empty. */
static void append_series_name(cw_buf_t *out, const char *name, const char *suffix,
                               const char *labels, const char *extra)
{
	cw_buf_append_str(out, name);
	cw_buf_append_str(out, suffix);
	bool has_labels = labels[0] != '\0';
	if (!has_labels && extra == NULL)
		return;
	cw_buf_append_char(out, '{');
	cw_buf_append_str(out, labels);
	if (extra != NULL) {
		if (has_labels)
			cw_buf_append_char(out, ',');
		cw_buf_append_str(out, extra);
	}
	cw_buf_append_char(out, '}');
}

static void render_histogram(cw_buf_t *out, const family_t *f, const series_t *s)
{
	uint64_t cumulative = 0;
	char le[64];
	for (size_t i = 0; i < NBUCKETS; i++) {
		cumulative += s->buckets[i];
		char bound[CW_JSON_DOUBLE_LEN];
		bound[cw_json_format_double(default_buckets[i], bound)] = '\0';
		snprintf(le, sizeof le, "le=\"%s\"", bound);
		append_series_name(out, f->name, "_bucket", s->labels, le);
		cw_buf_appendf(out, " %llu\n", (unsigned long long)cumulative);
	}
	append_series_name(out, f->name, "_bucket", s->labels, "le=\"+Inf\"");
	cw_buf_appendf(out, " %llu\n", (unsigned long long)s->count);
	append_series_name(out, f->name, "_sum", s->labels, NULL);
	cw_buf_append_char(out, ' ');
	append_number(out, s->value);
	cw_buf_append_char(out, '\n');
	append_series_name(out, f->name, "_count", s->labels, NULL);
	cw_buf_appendf(out, " %llu\n", (unsigned long long)s->count);
}

static int by_name(const void *a, const void *b)
{
	return strcmp((*(family_t *const *)a)->name, (*(family_t *const *)b)->name);
}

void cw_metrics_render(cw_metrics_t *metrics, cw_buf_t *out)
{
	static const char *const type_names[] = {"counter", "gauge", "histogram"};
	pthread_mutex_lock(&metrics->mutex);
	family_t **sorted = cw_xcalloc(metrics->nfamilies + 1, sizeof *sorted);
	for (size_t i = 0; i < metrics->nfamilies; i++)
		sorted[i] = &metrics->families[i];
	qsort(sorted, metrics->nfamilies, sizeof *sorted, by_name);
	for (size_t i = 0; i < metrics->nfamilies; i++) {
		const family_t *f = sorted[i];
		if (f->help != NULL)
			cw_buf_appendf(out, "# HELP %s %s\n", f->name, f->help);
		cw_buf_appendf(out, "# TYPE %s %s\n", f->name, type_names[f->type]);
		for (const series_t *s = f->series; s != NULL; s = s->next) {
			if (f->type == CW_METRIC_HISTOGRAM) {
				render_histogram(out, f, s);
				continue;
			}
			append_series_name(out, f->name, "", s->labels, NULL);
			cw_buf_append_char(out, ' ');
			append_number(out, s->value);
			cw_buf_append_char(out, '\n');
		}
	}
	free(sorted);
	pthread_mutex_unlock(&metrics->mutex);
}

void cw_metrics_label_escape(cw_buf_t *out, const char *value)
{
	for (const char *p = value; *p; p++) {
		if (*p == '\\')
			cw_buf_append_str(out, "\\\\");
		else if (*p == '"')
			cw_buf_append_str(out, "\\\"");
		else if (*p == '\n')
			cw_buf_append_str(out, "\\n");
		else
			cw_buf_append_char(out, *p);
	}
}
