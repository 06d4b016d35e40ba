/*
 * libFuzzer target: purged.conf text through inih and the configuration
 * validator. Must either accept or return errors, never crash or leak, with
 * properties: a refusal carries at least one error and an acceptance none,
 * and every error says where: "fuzz.conf:LINE: why", LINE within the text.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "daemon/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

__attribute__((noreturn)) static void fail(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_config: property broken: %s (%s)\n", what, detail ? detail : "");
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct daemon_conf *c = NULL;
	struct config_errors errs = { 0 };
	unsigned long lines = 1;

	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	int r = config_parse("fuzz.conf", (const char *)data, size, &c, &errs);
	if (r == 0) {
		if (errs.n)
			fail("an accepted configuration has no error", errs.v[0]);
		config_free(c);
	} else if (errs.n == 0) {
		fail("a refused configuration says why", NULL);
	}
	for (size_t i = 0; i < errs.n; i++) {
		const char *e = errs.v[i];
		char *end;
		if (strncmp(e, "fuzz.conf:", 10) != 0)
			fail("an error names the file", e);
		unsigned long line = strtoul(e + 10, &end, 10);
		if (end == e + 10 || line == 0 || line > lines || strncmp(end, ": ", 2) != 0 || !end[2])
			fail("an error carries FILE:LINE: and a reason, LINE within the text", e);
	}
	config_errors_clear(&errs);
	return 0;
}
