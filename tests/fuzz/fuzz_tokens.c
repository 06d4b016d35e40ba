/* libFuzzer target: a tokens file's text through the parser, then a verification. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "daemon/tokens.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), err[512];
	struct tokens *t = NULL;

	memcpy(text, data, size);
	text[size] = '\0';
	if (tokens_parse("fuzz.tokens", text, &t, err, sizeof(err)) == 0) {
		tokens_verify(t, text);
		tokens_free(t);
	}
	free(text);
	return 0;
}
