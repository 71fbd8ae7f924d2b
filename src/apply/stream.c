/* This file contains the stream rules declared in stream.h. */
#include "apply/stream.h"

#include "core/retry.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cw_stream_policy_resolve(const cw_config_t *config, const cw_target_config_t *target,
                              const char *entity, cw_stream_policy_t *out)
{
	const cw_stream_config_t *stream = cw_config_stream(target, entity);
	const cw_retry_policy_t *global = &config->retry;
	memset(out, 0, sizeof *out);
	out->enabled = true;
	out->on_error = CW_ON_ERROR_RETRY;
	out->on_transform_error = CW_ON_ERROR_DEAD_LETTER;
	out->give_up_after_ms = global->give_up_after_ms;
	out->initial_delay_ms = global->initial_ms > 0 ? global->initial_ms : 100;
	out->max_delay_ms = global->max_ms > 0 ? global->max_ms : 30000;
	out->multiplier = global->multiplier >= 1.0 ? global->multiplier : 2.0;
	out->jitter = global->jitter;
	if (stream == NULL)
		return;
	const cw_stream_retry_t *retry = &stream->retry_policy;
	out->enabled = stream->enabled != 0;
	out->batch_size = stream->batch_size;
	out->transformation_id = stream->transformation_id;
	out->on_error = stream->on_error;
	out->max_attempts = retry->max_attempts;
	if (retry->initial_delay_ms > 0)
		out->initial_delay_ms = retry->initial_delay_ms;
	if (retry->max_delay_ms > 0)
		out->max_delay_ms = retry->max_delay_ms;
	if (out->max_delay_ms < out->initial_delay_ms)
		out->max_delay_ms = out->initial_delay_ms;
	if (retry->backoff_multiplier >= 1.0)
		out->multiplier = retry->backoff_multiplier;
	const cw_transformation_config_t *tf = cw_config_transformation(config,
	                                                               stream->transformation_id);
	if (tf != NULL)
		out->on_transform_error = tf->on_error;
	for (const char *p = retry->permanent_error_codes; p != NULL && *p != '\0';) {
		size_t len = strcspn(p, ", ");
		if (len > 0 && len < sizeof out->codes[0] && out->ncodes < CW_STREAM_CODES_MAX)
			snprintf(out->codes[out->ncodes++], sizeof out->codes[0], "%.*s", (int)len, p);
		p += len;
		p += strspn(p, ", ");
	}
}

/* MongoDB server codes that mean the server, not the request: shutdown, elections, network. */
static const unsigned mongo_target_wide[] = {
	6, 7, 89, 91, 189, 262, 9001, 10058, 10107, 11600, 11602, 13435, 13436,
};

bool cw_stream_error_is_target_wide(const cw_err_t *err)
{
	const char *code = err->server_code;
	if (err->code == CW_EENTITY)
		return false;   /* the backend says it is this entity's (a name it cannot take) */
	if (code[0] == '\0')
		return true;
	size_t len = strlen(code);
	/* A SQLSTATE has five characters; no class starts with 1, as 5-digit MongoDB codes do. */
	if (len == 5 && strspn(code, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") == 5 &&
	    !(strspn(code, "0123456789") == 5 && code[0] == '1')) {
		static const char *const classes[] = {"08", "40", "53", "57", "58", "XX"};
		for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++)
			if (strncmp(code, classes[i], 2) == 0)
				return true;
		return false;
	}
	unsigned long number = strtoul(code, NULL, 10);
	for (size_t i = 0; i < sizeof mongo_target_wide / sizeof mongo_target_wide[0]; i++)
		if (number == mongo_target_wide[i])
			return true;
	return false;
}

bool cw_stream_error_is_permanent(const cw_stream_policy_t *policy, const cw_err_t *err)
{
	for (size_t i = 0; err->server_code[0] != '\0' && i < policy->ncodes; i++)
		if (strcmp(policy->codes[i], err->server_code) == 0)
			return true;
	return false;
}

int64_t cw_stream_retry_delay(const cw_stream_policy_t *policy, int64_t attempts, uint64_t *rng)
{
	double base = (double)policy->initial_delay_ms;
	for (int64_t i = 1; i < attempts && base < (double)policy->max_delay_ms; i++)
		base *= policy->multiplier;
	if (base > (double)policy->max_delay_ms)
		base = (double)policy->max_delay_ms;
	double unit = (double)(cw_retry_rand(rng) >> 11) / (double)(UINT64_C(1) << 53);
	double delay = base * (1.0 - policy->jitter * unit);
	return delay < 1 ? 1 : (int64_t)llround(delay);
}

bool cw_stream_budget_spent(const cw_stream_policy_t *policy, int64_t attempts,
                            int64_t first_failure_ms, int64_t now_ms)
{
	if (policy->max_attempts > 0)
		return attempts >= policy->max_attempts;
	return policy->give_up_after_ms > 0 && now_ms - first_failure_ms >= policy->give_up_after_ms;
}
