/* This file contains the error struct helpers declared in err.h. */
#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int cw_err_set(cw_err_t *err, int code, const char *domain, const char *fmt, ...)
{
	if (err == NULL)
		return code;
	err->code = code;
	err->server_code[0] = '\0';
	snprintf(err->domain, sizeof err->domain, "%s", domain ? domain : "");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof err->message, fmt, ap);
	va_end(ap);
	return code;
}

void cw_err_prefix(cw_err_t *err, const char *fmt, ...)
{
	if (err == NULL)
		return;
	char prefix[CW_ERR_MESSAGE_LEN];
	char old[CW_ERR_MESSAGE_LEN];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	memcpy(old, err->message, sizeof old);
	/* Build "prefix: old" by hand, truncating at the buffer's end. */
	size_t cap = sizeof err->message - 1;
	size_t n = strnlen(prefix, cap);
	memcpy(err->message, prefix, n);
	const char sep[] = ": ";
	for (size_t i = 0; i < 2 && n < cap; i++)
		err->message[n++] = sep[i];
	size_t rest = strnlen(old, sizeof old);
	if (rest > cap - n)
		rest = cap - n;
	memcpy(err->message + n, old, rest);
	err->message[n + rest] = '\0';
}

void cw_err_set_server_code(cw_err_t *err, const char *code)
{
	if (err != NULL)
		snprintf(err->server_code, sizeof err->server_code, "%s", code != NULL ? code : "");
}

void cw_err_clear(cw_err_t *err)
{
	if (err == NULL)
		return;
	err->code = 0;
	err->server_code[0] = '\0';
	err->domain[0] = '\0';
	err->message[0] = '\0';
}

const char *cw_err_code_name(int code)
{
	switch (code) {
	case CW_OK: return "ok";
	case CW_EINVAL: return "invalid";
	case CW_ENOTFOUND: return "not_found";
	case CW_ECONFLICT: return "conflict";
	case CW_EIO: return "io";
	case CW_EDB: return "database";
	case CW_ETIMEDOUT: return "timeout";
	case CW_ECLOSED: return "closed";
	case CW_ECANCELED: return "canceled";
	case CW_EPROTO: return "protocol";
	case CW_EINTERNAL: return "internal";
	case CW_EAUTH: return "auth";
	case CW_EENTITY: return "entity";
	default: return "unknown";
	}
}

bool cw_err_is_auth_refusal(const char *sqlstate, const char *message)
{
	if (sqlstate != NULL && (strcmp(sqlstate, "28P01") == 0 || strcmp(sqlstate, "28000") == 0))
		return true;
	if (message == NULL)
		return false;
	/* The server's texts for 28P01 and 28000, and libpq's own when it has no password to send. */
	static const char *const texts[] = {
		"password authentication failed", "authentication failed for user",
		"no pg_hba.conf entry", "pg_hba.conf rejects", "fe_sendauth: no password supplied",
	};
	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
		if (strstr(message, texts[i]) != NULL)
			return true;
	const char *role = strstr(message, "FATAL:  role \"");
	return role != NULL && strstr(role, "\" does not exist") != NULL;
}

bool cw_err_needs_a_fix(int code)
{
	return code == CW_EINVAL || code == CW_EAUTH || code == CW_EENTITY;
}
