/* This file contains the circuit breaker state machine declared in breaker.h. */
#include "control/breaker.h"

void cw_breaker_init(cw_breaker_t *breaker, int threshold, int64_t cool_down_ms)
{
	breaker->state = CW_BREAKER_CLOSED;
	breaker->failures = 0;
	breaker->threshold = threshold > 0 ? threshold : 1;
	breaker->cool_down_ms = cool_down_ms > 0 ? cool_down_ms : 0;
	breaker->opened_at_ms = 0;
	breaker->trial_in_flight = false;
}

bool cw_breaker_allow(cw_breaker_t *breaker, int64_t now_ms)
{
	switch (breaker->state) {
	case CW_BREAKER_CLOSED:
		return true;
	case CW_BREAKER_OPEN:
		if (now_ms - breaker->opened_at_ms < breaker->cool_down_ms)
			return false;
		breaker->state = CW_BREAKER_HALF_OPEN;
		breaker->trial_in_flight = true;
		return true;
	case CW_BREAKER_HALF_OPEN:
		if (breaker->trial_in_flight)
			return false;
		breaker->trial_in_flight = true;
		return true;
	}
	return false;
}

static void trip(cw_breaker_t *breaker, int64_t now_ms)
{
	breaker->state = CW_BREAKER_OPEN;
	breaker->opened_at_ms = now_ms;
	breaker->trial_in_flight = false;
}

void cw_breaker_record(cw_breaker_t *breaker, bool success, int64_t now_ms)
{
	if (success) {
		breaker->state = CW_BREAKER_CLOSED;
		breaker->failures = 0;
		breaker->trial_in_flight = false;
		return;
	}
	if (breaker->state == CW_BREAKER_HALF_OPEN) {
		trip(breaker, now_ms);
		return;
	}
	if (++breaker->failures >= breaker->threshold)
		trip(breaker, now_ms);
}

int64_t cw_breaker_wait_ms(const cw_breaker_t *breaker, int64_t now_ms)
{
	if (breaker->state != CW_BREAKER_OPEN)
		return 0;
	int64_t left = breaker->opened_at_ms + breaker->cool_down_ms - now_ms;
	return left > 0 ? left : 0;
}

const char *cw_breaker_state_name(cw_breaker_state_t state)
{
	switch (state) {
	case CW_BREAKER_CLOSED: return "closed";
	case CW_BREAKER_OPEN: return "open";
	case CW_BREAKER_HALF_OPEN: return "half_open";
	}
	return "unknown";
}
