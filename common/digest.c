/* SHA-256 as hex, for bearer tokens (the supervisor verifies, purgectl mints). */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "purged/util.h"

void sha256_hex(const char *s, char out[65])
{
	unsigned char h[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	if (!EVP_Digest(s, strlen(s), h, &len, EVP_sha256(), NULL) || len != 32)
		abort(); /* cannot fail for SHA-256 on a sane libcrypto */
	for (unsigned i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
	explicit_bzero(h, sizeof(h));
}
