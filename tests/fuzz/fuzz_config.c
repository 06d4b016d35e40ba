/*
 * libFuzzer target: purged.conf text through inih and the configuration
 * validator. Must either accept or return errors, never crash or leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include "daemon/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct daemon_conf *c = NULL;
	struct config_errors errs = { 0 };

	if (config_parse("fuzz.conf", (const char *)data, size, &c, &errs) == 0)
		config_free(c);
	config_errors_clear(&errs);
	return 0;
}
