/*
 * libFuzzer target: what an iTop or a Redmine could answer, through the
 * backends' response parsers. The first byte picks the parser. Properties:
 * each parser returns 0 or -EBADMSG; what it accepts is well-formed: ids > 0,
 * counts >= 0, every iTop object with a class and a key > 0 (as iTop writes
 * it: an integer or a string of digits), as many objects as the reply holds,
 * a page grown by exactly the entries of its last page.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "daemon/executor/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

__attribute__((noreturn)) static void fail(const char *what)
{
	fprintf(stderr, "fuzz_backends: property broken: %s\n", what);
	abort();
}

static void check_status(int r)
{
	if (r != 0 && r != -EBADMSG)
		fail("a parser returns 0 or -EBADMSG");
}

static void check_itop(const struct itop_reply *r)
{
	json_t *objs = json_object_get(r->doc, "objects");
	if (!r->message || r->number < -1)
		fail("an iTop reply has a message and a number >= -1");
	if (r->n_objects != (json_is_object(objs) ? json_object_size(objs) : 0))
		fail("an iTop reply lists every object it holds");
	for (size_t i = 0; i < r->n_objects; i++) {
		const struct itop_object *o = &r->objects[i];
		if (!o->cls || o->key <= 0)
			fail("an iTop object has a class and a key > 0");
	}
}

static void check_items(const struct redmine_item *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].id <= 0 || !v[i].name || v[i].parent < 0 || v[i].project < 0)
			fail("a Redmine entry has an id > 0, a name, and parent/project ids > 0 or none");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const keys[] = { "projects", "users", "groups", "issues" };
	const char *body = (const char *)data + 1;
	size_t len = size ? size - 1 : 0;
	int r;

	if (size == 0)
		return 0;
	switch (data[0] % 4) {
	case 0: {
		struct itop_reply rep;
		r = itop_parse_reply(body, len, "contactid", &rep);
		check_status(r);
		if (r == 0) {
			check_itop(&rep);
			itop_reply_clear(&rep);
		}
		break;
	}
	case 1: {
		/* Two pages into one list, as a paginated listing does. */
		struct redmine_page p = { 0 };
		const char *key = keys[(data[0] / 4) % 4];
		r = redmine_parse_page(body, len, key, &p);
		check_status(r);
		if (r == 0) {
			size_t first = p.n;
			if (p.last_count != first || p.total < 0)
				fail("a Redmine page holds its entries and a total >= 0");
			r = redmine_parse_page(body, len, key, &p);
			if (r != 0 || p.n != 2 * first || p.last_count != first)
				fail("a second page is appended whole, as the first parsed");
			check_items(p.v, p.n);
		}
		redmine_page_clear(&p);
		break;
	}
	case 2: {
		struct redmine_item u;
		bool known;
		r = redmine_parse_current_user(body, len, &u, &known);
		check_status(r);
		if (r == 0) {
			check_items(&u, 1);
			free(u.name);
		}
		break;
	}
	default: {
		long total = -1;
		r = redmine_parse_total(body, len, &total);
		check_status(r);
		if (r == 0 && total < 0)
			fail("a Redmine total is >= 0");
	}
	}
	return 0;
}
