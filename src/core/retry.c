/* This file contains the exponential backoff declared in retry.h. */
#include "core/retry.h"

#include <assert.h>

int cw_retry_policy_check(const cw_retry_policy_t *policy, cw_err_t *err)
{
	if (policy->initial_ms <= 0)
		return cw_err_set(err, CW_EINVAL, "retry", "retry \"initial\" must be positive");
	if (policy->max_ms < policy->initial_ms)
		return cw_err_set(err, CW_EINVAL, "retry",
			"retry \"max\" must not be less than \"initial\"");
	if (!(policy->multiplier >= 1.0 && policy->multiplier <= 1000.0))
		return cw_err_set(err, CW_EINVAL, "retry",
			"retry \"multiplier\" must be between 1 and 1000");
	if (policy->give_up_after_ms < 0)
		return cw_err_set(err, CW_EINVAL, "retry",
			"retry \"give_up_after\" must not be negative");
	if (!(policy->jitter >= 0.0 && policy->jitter <= 1.0))
		return cw_err_set(err, CW_EINVAL, "retry", "retry \"jitter\" must be between 0 and 1");
	return 0;
}

void cw_retry_init(cw_retry_t *retry, const cw_retry_policy_t *policy)
{
	assert(cw_retry_policy_check(policy, NULL) == 0);
	retry->policy = *policy;
	cw_retry_reset(retry);
}

void cw_retry_reset(cw_retry_t *retry)
{
	retry->attempts = 0;
	retry->first_failure_ms = 0;
	retry->next_base_ms = (double)retry->policy.initial_ms;
}

uint64_t cw_retry_rand(uint64_t *rng_state)
{
	uint64_t z = (*rng_state += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* A uniform double in [0, 1) from the top 53 bits. */
static double rand_unit(uint64_t *rng_state)
{
	return (double)(cw_retry_rand(rng_state) >> 11) * (1.0 / 9007199254740992.0);
}

int cw_retry_next_delay(cw_retry_t *retry, const cw_clock_t *clock, uint64_t *rng_state,
	int64_t *delay_ms)
{
	const cw_retry_policy_t *policy = &retry->policy;
	int64_t now = cw_clock_now_ms(clock);
	if (retry->attempts == 0)
		retry->first_failure_ms = now;
	retry->attempts++;
	int64_t elapsed = now - retry->first_failure_ms;
	*delay_ms = 0;
	if (policy->give_up_after_ms > 0 && elapsed >= policy->give_up_after_ms)
		return CW_ETIMEDOUT;

	int64_t base = (int64_t)(retry->next_base_ms + 0.5);
	int64_t spread = (int64_t)(policy->jitter * (double)base * rand_unit(rng_state));
	int64_t delay = base - spread;
	if (policy->give_up_after_ms > 0 && delay > policy->give_up_after_ms - elapsed)
		delay = policy->give_up_after_ms - elapsed;

	double next = retry->next_base_ms * policy->multiplier;
	retry->next_base_ms = next < (double)policy->max_ms ? next : (double)policy->max_ms;
	*delay_ms = delay;
	return 0;
}

int cw_retry_backoff(cw_retry_t *retry, const cw_clock_t *clock, uint64_t *rng_state,
	cw_cancel_t *cancel)
{
	if (cw_cancel_is_set(cancel))
		return CW_ECANCELED;
	int64_t delay_ms;
	int rc = cw_retry_next_delay(retry, clock, rng_state, &delay_ms);
	if (rc != 0)
		return rc;
	return cw_clock_sleep_ms(clock, delay_ms, cancel);
}
