/*
 * This file contains the secret masking declared in secret.h.
 *
 * Two passes over the text, each copying it into a new buffer:
 *
 * 1. URLs: after every "://" the authority runs to the first '/', '?', '#',
 *    whitespace, quote or angle bracket (libpq and the MongoDB driver stop at
 *    '/' as well, so a password holding one must be percent-encoded anyway).
 *    Inside it the last '@' ends the userinfo and the first ':' of the
 *    userinfo starts the password, so "user:pa:ss@w@host" masks "pa:ss@w".
 *
 * 2. Key/value pairs: a name ending in password, passwd, pwd, secret or token
 *    (any case, so sslpassword and access_token count), optional blanks, '=',
 *    optional blanks, then a value: either libpq-quoted ('se cret', with
 *    backslash escapes) or bare, running to whitespace, '&', or a quote. This
 *    covers conninfo strings and query strings alike.
 *
 * An empty password is left as it is: there is nothing to hide.
 */
#include "core/secret.h"

#include "core/buf.h"

#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char mask[] = "****";

static const char *const sensitive_suffixes[] = {
	"password", "passwd", "pwd", "secret", "token",
};

static bool ends_authority(char c)
{
	return c == '\0' || c == '/' || c == '?' || c == '#' || c == '"' || c == '\'' ||
		c == '<' || c == '>' || isspace((unsigned char)c);
}

static char *mask_urls(const char *text)
{
	cw_buf_t out = CW_BUF_INIT;
	const char *copied = text;   /* text before this is in out already */
	const char *scan = text;
	const char *sep;
	while ((sep = strstr(scan, "://")) != NULL) {
		const char *authority = sep + 3;
		const char *end = authority;
		const char *at = NULL;
		while (!ends_authority(*end)) {
			if (*end == '@')
				at = end;
			end++;
		}
		const char *colon = at ? memchr(authority, ':', (size_t)(at - authority)) : NULL;
		if (colon != NULL && colon + 1 < at) {
			cw_buf_append(&out, copied, (size_t)(colon + 1 - copied));
			cw_buf_append_str(&out, mask);
			copied = at;
		}
		scan = end;
	}
	cw_buf_append_str(&out, copied);
	return cw_buf_take(&out);
}

static bool is_name_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '-';
}

/* True when the name just before text[eq] (blanks allowed) ends in a sensitive word. */
static bool names_secret(const char *text, size_t eq)
{
	size_t end = eq;
	while (end > 0 && (text[end - 1] == ' ' || text[end - 1] == '\t'))
		end--;
	size_t start = end;
	while (start > 0 && is_name_char(text[start - 1]))
		start--;
	size_t name_len = end - start;
	for (size_t i = 0; i < sizeof sensitive_suffixes / sizeof sensitive_suffixes[0]; i++) {
		size_t len = strlen(sensitive_suffixes[i]);
		if (name_len >= len &&
			strncasecmp(text + end - len, sensitive_suffixes[i], len) == 0)
			return true;
	}
	return false;
}

/* The end of the value starting at value: a libpq-quoted string or a bare word. */
static const char *value_end(const char *value)
{
	const char *p = value;
	if (*p == '\'') {
		for (p++; *p != '\0' && *p != '\''; p++) {
			if (*p == '\\' && p[1] != '\0')
				p++;
		}
		return *p == '\'' ? p + 1 : p;
	}
	while (*p != '\0' && *p != '&' && *p != '"' && *p != '\'' &&
		!isspace((unsigned char)*p)) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		p++;
	}
	return p;
}

static char *mask_pairs(const char *text)
{
	cw_buf_t out = CW_BUF_INIT;
	const char *copied = text;
	const char *eq = text;
	while ((eq = strchr(eq, '=')) != NULL) {
		if (!names_secret(text, (size_t)(eq - text))) {
			eq++;
			continue;
		}
		const char *value = eq + 1;
		while (*value == ' ' || *value == '\t')
			value++;
		const char *end = value_end(value);
		bool empty = end == value || (end - value == 2 && value[0] == '\'');
		if (!empty) {
			cw_buf_append(&out, copied, (size_t)(value - copied));
			cw_buf_append_str(&out, mask);
			copied = end;
		}
		eq = end > eq ? end : eq + 1;
	}
	cw_buf_append_str(&out, copied);
	return cw_buf_take(&out);
}

char *cw_secret_mask(const char *text)
{
	char *urls_masked = mask_urls(text ? text : "");
	char *masked = mask_pairs(urls_masked);
	free(urls_masked);
	return masked;
}
