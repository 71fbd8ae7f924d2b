/* This file contains the dead-letter selection declared in dead_letter_select.h. */
#include "control/dead_letter_select.h"

#include "core/entity.h"
#include "core/units.h"

#include <stdio.h>

#define DOMAIN "deadletter"

/* Names key in err's message the way the caller's users write it. */
static int named(cw_err_t *err, const char *prefix, const char *key, const char *suffix)
{
	cw_err_prefix(err, "%s%s%s", prefix, key, suffix);
	return CW_EINVAL;
}

int cw_dead_letter_select_parse(const cw_dead_letter_select_text_t *text, const char *prefix,
                                const char *suffix, cw_dead_letter_filter_t *filter,
                                cw_err_t *err)
{
	*filter = (cw_dead_letter_filter_t)CW_DEAD_LETTER_FILTER_ALL;
	filter->limit = CW_DEAD_LETTER_LIST_DEFAULT;
	if (text->target != NULL && cw_identifier_validate("target name", text->target, err) != 0)
		return named(err, prefix, "target", suffix);
	if (text->entity != NULL && cw_entity_name_validate(text->entity, err) != 0)
		return named(err, prefix, "entity", suffix);
	filter->target = text->target;
	filter->entity = text->entity;
	if (text->status != NULL) {
		filter->status = cw_dead_letter_status_parse(text->status);
		if (filter->status < 0) {
			cw_err_set(err, CW_EINVAL, DOMAIN, "expected failed or replay, got \"%.64s\"",
			           text->status);
			return named(err, prefix, "status", suffix);
		}
	}
	char what[64];
	int64_t value = 0;
	if (text->after != NULL) {
		snprintf(what, sizeof what, "%safter%s", prefix, suffix);
		if (cw_integer_parse(what, text->after, 0, INT64_MAX, &value, err) != 0)
			return CW_EINVAL;
		filter->after_id = value;
	}
	if (text->limit != NULL) {
		snprintf(what, sizeof what, "%slimit%s", prefix, suffix);
		if (cw_integer_parse(what, text->limit, 1, CW_DEAD_LETTER_LIST_MAX, &value, err) != 0)
			return CW_EINVAL;
		filter->limit = (size_t)value;
	}
	return 0;
}

int cw_dead_letter_id_parse(const char *text, int64_t *id, cw_err_t *err)
{
	return cw_integer_parse("dead letter id", text, 1, INT64_MAX, id, err);
}
