/* A child's stderr relayed into the daemon's log; see childlog.h. Supervisor only. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "daemon/childlog.h"
#include "purged/log.h"
#include "purged/util.h"

void childlog_init(struct childlog *l, const char *fmt, ...)
{
	va_list ap;
	memset(l, 0, sizeof(*l));
	va_start(ap, fmt);
	vsnprintf(l->prefix, sizeof(l->prefix), fmt, ap);
	va_end(ap);
}

static void say_dropped(struct childlog *l)
{
	if (!l->dropped)
		return;
	log_warnx("%s %llu log lines not relayed (more than %d a second)", l->prefix, (unsigned long long)l->dropped,
		  CHILDLOG_LINES_PER_SEC);
	l->dropped = 0;
}

static void relay_line(struct childlog *l, char *line)
{
	int prio = 6;
	int64_t now = mono_usec();

	if (now - l->window >= 1000000) {
		say_dropped(l);
		l->window = now;
		l->lines = 0;
	}
	if (++l->lines > CHILDLOG_LINES_PER_SEC) {
		l->dropped++;
		return;
	}
	if (line[0] == '<' && line[1] >= '0' && line[1] <= '7' && line[2] == '>') {
		prio = line[1] - '0';
		line += 3;
	}
	/* A child cannot raise alerts above err; its text is made safe by the logger. */
	if (prio <= 5)
		log_warnx("%s %s", l->prefix, line);
	else if (prio == 7)
		log_debug("%s %s", l->prefix, line);
	else
		log_info("%s %s", l->prefix, line);
}

static void split(struct childlog *l, bool all)
{
	char *nl;
	while ((nl = memchr(l->buf, '\n', l->len))) {
		*nl = '\0';
		relay_line(l, l->buf);
		size_t used = (size_t)(nl - l->buf) + 1;
		memmove(l->buf, nl + 1, l->len - used);
		l->len -= used;
	}
	if (l->len && (all || l->len == sizeof(l->buf) - 1)) {
		l->buf[l->len] = '\0';
		relay_line(l, l->buf);
		l->len = 0;
	}
}

void childlog_feed(struct childlog *l, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		l->buf[l->len++] = p[i];
		if (p[i] == '\n' || l->len == sizeof(l->buf) - 1)
			split(l, false);
	}
}

void childlog_flush(struct childlog *l)
{
	split(l, true);
	say_dropped(l);
}
