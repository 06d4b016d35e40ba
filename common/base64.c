/*
 * base64 for binary bytes carried in JSON (archive records, archive chunks
 * in replies), on nettle, which every program links already.
 */
#include <nettle/base64.h>
#include <stdio.h>
#include <stdlib.h>
#include "purged/util.h"

char *b64_encode(const void *data, size_t len)
{
	if (len > (SIZE_MAX - 1) / 4 * 3 - 3)
		return NULL;
	char *out = malloc(BASE64_ENCODE_RAW_LENGTH(len) + 1);
	if (!out)
		return NULL;
	base64_encode_raw(out, len, data);
	out[BASE64_ENCODE_RAW_LENGTH(len)] = '\0';
	return out;
}

int b64_decode(const char *text, size_t text_len, unsigned char **ret, size_t *ret_len)
{
	struct base64_decode_ctx ctx;
	unsigned char *out = malloc(BASE64_DECODE_LENGTH(text_len) + 1);
	size_t n = BASE64_DECODE_LENGTH(text_len) + 1;

	if (!out)
		return -1;
	base64_decode_init(&ctx);
	if (!base64_decode_update(&ctx, &n, out, text_len, text) || !base64_decode_final(&ctx)) {
		free(out);
		return -1;
	}
	*ret = out;
	*ret_len = n;
	return 0;
}

void sha256_to_hex(const unsigned char digest[32], char out[65])
{
	for (unsigned i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", digest[i]);
}
