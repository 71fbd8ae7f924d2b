/*
 * This file contains secret masking: a password inside a URL
 * (postgresql://user:secret@host, mongodb://user:secret@host) or a libpq
 * conninfo string (password=secret) is replaced by "****". The logger, the
 * config printer and the API all mask through here.
 */
#ifndef CW_CORE_SECRET_H
#define CW_CORE_SECRET_H

/* Returns a new string (owned by the caller) with every password in text masked. */
char *cw_secret_mask(const char *text);

#endif
