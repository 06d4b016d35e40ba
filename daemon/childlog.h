/*
 * A child's stderr relayed into the daemon's log (executors, purged-rest):
 * line by line, each prefixed with who wrote it, its "<N>" priority kept but
 * never above err, and at most CHILDLOG_LINES_PER_SEC lines a second (the
 * rest counted in one warning). A compromised child can neither forge a
 * daemon line nor flood the log. Supervisor only.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define CHILDLOG_LINES_PER_SEC 200

struct childlog {
	char prefix[64];   /* "[executor 123 task 01a22b7e]" */
	char buf[1024];
	size_t len;
	int64_t window;    /* mono usec of the current second */
	unsigned lines;
	uint64_t dropped;
};

void childlog_init(struct childlog *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Bytes read from the child's stderr. */
void childlog_feed(struct childlog *l, const char *p, size_t n);
/* At its end: the unterminated last line, and the count of lines not relayed. */
void childlog_flush(struct childlog *l);
