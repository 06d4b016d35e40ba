/*
 * libFuzzer target: what an iTop or a Redmine could answer, through the
 * backends' response parsers. The first byte picks the parser.
 */
#include <stdint.h>
#include <stdlib.h>
#include "daemon/executor/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const keys[] = { "projects", "users", "groups" };
	const char *body = (const char *)data + 1;
	size_t len = size ? size - 1 : 0;

	if (size == 0)
		return 0;
	switch (data[0] % 4) {
	case 0: {
		struct itop_reply r;
		if (itop_parse_reply(body, len, "contactid", &r) == 0)
			itop_reply_clear(&r);
		break;
	}
	case 1: {
		struct redmine_page p = { 0 };
		redmine_parse_page(body, len, keys[(data[0] / 4) % 3], &p);
		redmine_page_clear(&p);
		break;
	}
	case 2: {
		struct redmine_item u;
		bool known;
		if (redmine_parse_current_user(body, len, &u, &known) == 0)
			free(u.name);
		break;
	}
	default: {
		long total;
		redmine_parse_total(body, len, &total);
	}
	}
	return 0;
}
