/*
 * This file contains the parsers and printers of the two unit-carrying value
 * kinds of the configuration: durations (250ms, 5s, 10m, 1h, 7d, and sums of
 * them such as 1h30m), kept as int64 milliseconds, and sizes (512KiB, 64MiB,
 * 1GiB, 100MB, 4096), kept as int64 bytes.
 *
 * Grammar. A duration is one or more <digits><unit> parts, unit one of ms, s,
 * m, h, d (lower case), with no spaces and no sign; the parts are added
 * ("1m30s" is 90000 ms). A lone "0" is accepted; any other bare number is an
 * error, since "5" could mean seconds or milliseconds. A size is <digits>
 * followed by an optional unit: B (or none) for bytes, KiB, MiB, GiB, TiB
 * (powers of 1024) or kB, MB, GB, TB (powers of 1000); units are matched
 * without regard to case. Values that do not fit in int64 are errors.
 *
 * Error messages quote the text (at most 64 characters of it) and say what
 * is wrong: invalid duration "5x": unknown unit "x" (use ms, s, m, h or d).
 *
 * Also here: whole decimal integers in a range, as command options and query
 * parameters give them (a count, a limit, an id).
 */
#ifndef CW_CORE_UNITS_H
#define CW_CORE_UNITS_H

#include "core/err.h"

#include <stdint.h>

/* Room for any formatted duration or size, NUL included. */
#define CW_UNITS_FORMAT_LEN 32

/* Parses text (borrowed) into *ms. 0, or CW_EINVAL with err filled (domain "units"). */
int cw_duration_parse(const char *text, int64_t *ms, cw_err_t *err);

/* Parses text (borrowed) into *bytes. 0, or CW_EINVAL with err filled. */
int cw_size_parse(const char *text, int64_t *bytes, cw_err_t *err);

/*
 * Parses text (borrowed), a whole decimal integer without sign, space or
 * unit ("-5" is allowed for a negative min), into *out when it lies in
 * [min, max]. 0, or CW_EINVAL with a message that starts with what:
 * `--limit: 0 is out of range (1..10000)`.
 */
int cw_integer_parse(const char *what, const char *text, int64_t min, int64_t max, int64_t *out,
                     cw_err_t *err);

/*
 * Writes ms (>= 0) in the largest unit that holds it exactly: 7d, 90s, 250ms,
 * 0. The output parses back to the same value. Negative values are written
 * as a plain number of milliseconds ("-5ms"); they never come from a parser.
 */
void cw_duration_format(int64_t ms, char out[CW_UNITS_FORMAT_LEN]);

/* Writes bytes in the largest binary unit that holds it exactly: 1MiB, 1536KiB, 100B. */
void cw_size_format(int64_t bytes, char out[CW_UNITS_FORMAT_LEN]);

#endif
