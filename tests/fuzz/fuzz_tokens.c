/*
 * libFuzzer target: a tokens file's text through the parser, then
 * verifications, with properties:
 *  - the input as a tokens file either parses, or fails with a message
 *    naming the file; a parsed file verifies a token only when the token's
 *    SHA-256 is written in it;
 *  - the input's lines as tokens: a file listing the hashes of all but the
 *    last verifies each listed token (to the name it was listed under, or an
 *    earlier one of the same token) and does not verify the last one unless
 *    it equals a listed one.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "daemon/tokens.h"
#include "purged/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_TOKENS 16

__attribute__((noreturn)) static void fail(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_tokens: property broken: %s (%s)\n", what, detail ? detail : "");
	abort();
}

/* The input as a file of its own. */
static void as_file(const char *text)
{
	struct tokens *t = NULL;
	char err[512] = "", hex[65];

	if (tokens_parse("fuzz.tokens", text, &t, err, sizeof(err)) < 0) {
		if (t || strncmp(err, "fuzz.tokens:", 12) != 0)
			fail("a refused file names the file in its message", err);
		return;
	}
	if (tokens_count(t) == 0)
		fail("a parsed file holds at least one token", NULL);
	/* Any string: here the text itself, and its first line. */
	const char *probes[2] = { text, NULL };
	char *first = xstrdup(text);
	first[strcspn(first, "\n")] = '\0';
	probes[1] = first;
	for (int i = 0; i < 2; i++) {
		if (!tokens_verify(t, probes[i]))
			continue;
		sha256_hex(probes[i], hex);
		if (!strstr(text, hex))
			fail("a token verifies only when its hash is in the file", probes[i]);
	}
	free(first);
	tokens_free(t);
}

/* The input's lines as token values; all but the last listed. */
static void as_tokens(const char *text)
{
	char *copy = xstrdup(text), *save = NULL, *v[MAX_TOKENS];
	size_t n = 0;

	for (char *p = strtok_r(copy, "\n", &save); p && n < MAX_TOKENS; p = strtok_r(NULL, "\n", &save))
		v[n++] = p;
	if (n < 2) {
		free(copy);
		return;
	}
	/* "tN:HEX\n" per listed token. */
	char *file = xmalloc((n - 1) * 80 + 1), *w = file, hex[65];
	for (size_t i = 0; i + 1 < n; i++) {
		sha256_hex(v[i], hex);
		w += sprintf(w, "t%zu:%s\n", i, hex);
	}
	struct tokens *t = NULL;
	char err[512] = "";
	if (tokens_parse("fuzz.tokens", file, &t, err, sizeof(err)) < 0)
		fail("a file written from hashes parses", err);
	if (tokens_count(t) != n - 1)
		fail("every listed token is held", NULL);
	bool last_listed = false;
	for (size_t i = 0; i + 1 < n; i++) {
		const char *name = tokens_verify(t, v[i]);
		size_t k = 0;
		if (!name || name[0] != 't' || sscanf(name + 1, "%zu", &k) != 1 || k >= n - 1)
			fail("a listed token verifies to a listed name", v[i]);
		if (strcmp(v[k], v[i]) != 0)
			fail("a token verifies to the name of the same token", v[i]);
		last_listed |= strcmp(v[i], v[n - 1]) == 0;
	}
	if (!last_listed && tokens_verify(t, v[n - 1]))
		fail("an unlisted token does not verify", v[n - 1]);
	if (tokens_verify(t, "") || tokens_verify(t, NULL))
		fail("an empty token never verifies", NULL);
	tokens_free(t);
	free(file);
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);

	memcpy(text, data, size);
	text[size] = '\0';
	as_file(text);
	as_tokens(text);
	free(text);
	return 0;
}
