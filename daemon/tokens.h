/*
 * Bearer tokens for purged-rest: a tokens file of "NAME:SHA256-HEX" lines
 * (a secret file: owner and mode checked like any credential). Only hashes are
 * held; a presented token is hashed and compared in constant time against
 * every entry. Supervisor only: purged-rest never sees this file.
 */
#pragma once
#include <stddef.h>

struct tokens;

/* Load @path. Returns 0 with *ret, or a negative errno with "PATH:LINE: why" in @err. */
int tokens_load(const char *path, struct tokens **ret, char *err, size_t errlen);
/* Parse a tokens file's @text (messages name @path). Same returns as tokens_load. */
int tokens_parse(const char *path, const char *text, struct tokens **ret, char *err, size_t errlen);
struct tokens *tokens_free(struct tokens *t);
/* The name of the token @token, or NULL when it matches none. Constant time in the token's value. */
const char *tokens_verify(const struct tokens *t, const char *token);
size_t tokens_count(const struct tokens *t);
