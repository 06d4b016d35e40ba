/*
 * SHA-256 for bearer tokens (the supervisor verifies, purgectl mints), on
 * nettle: a small library, so the supervisor does not carry libcrypto's
 * megabytes for one hash.
 */
#include <nettle/memops.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <string.h>
#include "purged/util.h"

void sha256_raw(const char *s, unsigned char out[32])
{
	struct sha256_ctx ctx;
	sha256_init(&ctx);
	sha256_update(&ctx, strlen(s), (const uint8_t *)s);
	sha256_digest(&ctx, SHA256_DIGEST_SIZE, out);
	explicit_bzero(&ctx, sizeof(ctx));
}

void sha256_hex(const char *s, char out[65])
{
	unsigned char h[32];
	sha256_raw(s, h);
	sha256_to_hex(h, out);
	explicit_bzero(h, sizeof(h));
}

bool memeq_const_time(const void *a, const void *b, size_t n)
{
	return memeql_sec(a, b, n) != 0;
}
