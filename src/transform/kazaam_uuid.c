/*
 * This file contains the UUIDs of kazaam's uuid operation (kazaam_internal.h):
 * RFC 4122 versions 3 (MD5) and 5 (SHA-1) of a namespace and a name, and
 * version 4 from random bytes. MD5 and SHA-1 are written out here (RFC 1321,
 * FIPS 180-4): they name things, they protect nothing.
 */
#include "transform/kazaam_internal.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static uint32_t rotl(uint32_t x, unsigned n)
{
	return (x << n) | (x >> (32 - n));
}

/* Message padding shared by both digests: 0x80, zeros, the bit length (little or big endian). */
static size_t pad(const unsigned char *prefix, size_t prefix_len, const char *name,
                  size_t name_len, bool big_endian, unsigned char **out)
{
	uint64_t bytes = prefix_len + name_len;
	size_t total = (size_t)((bytes + 8) / 64 + 1) * 64;
	unsigned char *msg = calloc(total, 1);
	if (msg == NULL)
		abort();
	memcpy(msg, prefix, prefix_len);
	memcpy(msg + prefix_len, name, name_len);
	msg[bytes] = 0x80;
	uint64_t bits = bytes * 8;
	for (int i = 0; i < 8; i++)
		msg[total - 8 + (size_t)i] =
			(unsigned char)(big_endian ? bits >> (56 - 8 * i) : bits >> (8 * i));
	*out = msg;
	return total;
}

static void md5(const unsigned char *msg, size_t len, unsigned char digest[16])
{
	static const unsigned shifts[4][4] = {{7, 12, 17, 22}, {5, 9, 14, 20}, {4, 11, 16, 23},
	                                      {6, 10, 15, 21}};
	uint32_t k[64];
	for (int i = 0; i < 64; i++)
		k[i] = (uint32_t)(fabs(sin((double)(i + 1))) * 4294967296.0);
	uint32_t h[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};
	for (size_t block = 0; block < len; block += 64) {
		uint32_t m[16];
		for (int i = 0; i < 16; i++)
			m[i] = (uint32_t)msg[block + 4 * i] | (uint32_t)msg[block + 4 * i + 1] << 8 |
			       (uint32_t)msg[block + 4 * i + 2] << 16 | (uint32_t)msg[block + 4 * i + 3] << 24;
		uint32_t a = h[0], b = h[1], c = h[2], d = h[3];
		for (int i = 0; i < 64; i++) {
			uint32_t f;
			int g;
			if (i < 16) {
				f = (b & c) | (~b & d);
				g = i;
			} else if (i < 32) {
				f = (d & b) | (~d & c);
				g = (5 * i + 1) % 16;
			} else if (i < 48) {
				f = b ^ c ^ d;
				g = (3 * i + 5) % 16;
			} else {
				f = c ^ (b | ~d);
				g = (7 * i) % 16;
			}
			uint32_t next = d;
			d = c;
			c = b;
			b = b + rotl(a + f + k[i] + m[g], shifts[i / 16][i % 4]);
			a = next;
		}
		h[0] += a;
		h[1] += b;
		h[2] += c;
		h[3] += d;
	}
	for (int i = 0; i < 16; i++)
		digest[i] = (unsigned char)(h[i / 4] >> (8 * (i % 4)));
}

static void sha1(const unsigned char *msg, size_t len, unsigned char digest[20])
{
	uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
	for (size_t block = 0; block < len; block += 64) {
		uint32_t w[80];
		for (int i = 0; i < 16; i++)
			w[i] = (uint32_t)msg[block + 4 * i] << 24 | (uint32_t)msg[block + 4 * i + 1] << 16 |
			       (uint32_t)msg[block + 4 * i + 2] << 8 | (uint32_t)msg[block + 4 * i + 3];
		for (int i = 16; i < 80; i++)
			w[i] = rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
		uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
		for (int i = 0; i < 80; i++) {
			uint32_t f, k;
			if (i < 20) {
				f = (b & c) | (~b & d);
				k = 0x5A827999;
			} else if (i < 40) {
				f = b ^ c ^ d;
				k = 0x6ED9EBA1;
			} else if (i < 60) {
				f = (b & c) | (b & d) | (c & d);
				k = 0x8F1BBCDC;
			} else {
				f = b ^ c ^ d;
				k = 0xCA62C1D6;
			}
			uint32_t next = rotl(a, 5) + f + e + k + w[i];
			e = d;
			d = c;
			c = rotl(b, 30);
			b = a;
			a = next;
		}
		h[0] += a;
		h[1] += b;
		h[2] += c;
		h[3] += d;
		h[4] += e;
	}
	for (int i = 0; i < 20; i++)
		digest[i] = (unsigned char)(h[i / 4] >> (24 - 8 * (i % 4)));
}

static void set_version(unsigned char u[16], int version)
{
	u[6] = (unsigned char)((u[6] & 0x0f) | (version << 4));
	u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);
}

void kz_uuid_from_name(int version, const unsigned char ns[16], const char *name, size_t len,
                       unsigned char out[16])
{
	unsigned char *msg;
	size_t total = pad(ns, 16, name, len, version == 5, &msg);
	unsigned char digest[20];
	if (version == 5)
		sha1(msg, total, digest);
	else
		md5(msg, total, digest);
	free(msg);
	memcpy(out, digest, 16);
	set_version(out, version);
}

void kz_uuid_v4(unsigned char bytes[16])
{
	set_version(bytes, 4);
}

void kz_uuid_text(const unsigned char u[16], cw_buf_t *out)
{
	static const char hex[] = "0123456789abcdef";
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			cw_buf_append_char(out, '-');
		cw_buf_append_char(out, hex[u[i] >> 4]);
		cw_buf_append_char(out, hex[u[i] & 15]);
	}
}

/* 32 hex digits, or the canonical 8-4-4-4-12 form. */
static bool read_plain(const char *text, size_t len, unsigned char out[16])
{
	if (len == 36 && (text[8] != '-' || text[13] != '-' || text[18] != '-' || text[23] != '-'))
		return false;
	if (len != 32 && len != 36)
		return false;
	size_t k = 0;
	for (size_t i = 0; i < len; i++) {
		if (len == 36 && (i == 8 || i == 13 || i == 18 || i == 23))
			continue;
		if (i + 1 >= len || !isxdigit((unsigned char)text[i]) ||
		    !isxdigit((unsigned char)text[i + 1]))
			return false;
		char pair[3] = {text[i], text[i + 1], '\0'};
		out[k++] = (unsigned char)strtoul(pair, NULL, 16);
		i++;
	}
	return k == 16;
}

bool kz_uuid_namespace(const char *text, unsigned char out[16])
{
	static const struct { const char *name; const char *uuid; } known[] = {
		{"DNS", "6ba7b810-9dad-11d1-80b4-00c04fd430c8"},
		{"URL", "6ba7b811-9dad-11d1-80b4-00c04fd430c8"},
		{"OID", "6ba7b812-9dad-11d1-80b4-00c04fd430c8"},
		{"X500", "6ba7b814-9dad-11d1-80b4-00c04fd430c8"},
	};
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
		if (strcmp(text, known[i].name) == 0)
			return read_plain(known[i].uuid, 36, out);
	size_t len = strlen(text);
	if (len == 32 || len == 36)
		return read_plain(text, len, out);
	if ((len == 34 || len == 38) && text[0] == '{' && text[len - 1] == '}')
		return read_plain(text + 1, len - 2, out);
	if ((len == 41 || len == 45) && strncmp(text, "urn:uuid:", 9) == 0)
		return read_plain(text + 9, len - 9, out);
	return false;
}
