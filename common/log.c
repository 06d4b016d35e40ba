/* Logging to stderr with journald priority prefixes; see purged/log.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "purged/log.h"
#include "purged/text.h"
#include "purged/util.h"

static char log_tag[64] = "purged";
static bool log_debug_on;
static bool log_prefixed; /* journald-style "<N>" prefix instead of a timestamp */

void log_init(const char *tag, bool debug)
{
	log_settag(tag);
	log_debug_on = debug;
	log_prefixed = !isatty(STDERR_FILENO) || getenv("JOURNAL_STREAM");
}

void log_settag(const char *tag)
{
	snprintf(log_tag, sizeof(log_tag), "%s", tag);
}

static void emit_line(int prio, const char *msg)
{
	/* One write per line, so lines of concurrent processes do not interleave. */
	if (log_prefixed) {
		dprintf(STDERR_FILENO, "<%d>%s: %s\n", prio, log_tag, msg);
	} else {
		char ts[32];
		time_t t = time(NULL);
		struct tm tm;
		strftime(ts, sizeof(ts), "%H:%M:%S", localtime_r(&t, &tm));
		dprintf(STDERR_FILENO, "%s %s: %s\n", ts, log_tag, msg);
	}
}

void log_emit(int prio, const char *fmt, va_list ap)
{
	char msg[2048];
	int saved = errno;

	if (prio >= 7 && !log_debug_on)
		return;
	/* Quoted bytes stay on this line, as valid UTF-8: a peer cannot forge "\n<2>..." lines. */
	text_vformat(msg, sizeof(msg), TEXT_ESCAPE_CONTROLS, fmt, ap);
	emit_line(prio, msg);
	errno = saved;
}

static void emit_errno(int prio, int err, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));

static void emit_errno(int prio, int err, const char *fmt, va_list ap)
{
	char msg[1536], line[2048];

	text_vformat(msg, sizeof(msg), TEXT_ESCAPE_CONTROLS, fmt, ap);
	snprintf(line, sizeof(line), "%s: %s", msg, strerror(err));
	emit_line(prio, line);
	errno = err;
}

#define LOG_BODY(call)           \
	va_list ap;              \
	va_start(ap, fmt);       \
	call;                    \
	va_end(ap)

void log_warn(const char *fmt, ...) { int e = errno; LOG_BODY(emit_errno(4, e, fmt, ap)); }
void log_warnx(const char *fmt, ...) { LOG_BODY(log_emit(4, fmt, ap)); }
void log_info(const char *fmt, ...) { LOG_BODY(log_emit(6, fmt, ap)); }
void log_debug(const char *fmt, ...) { LOG_BODY(log_emit(7, fmt, ap)); }

void log_warnx_limited(struct log_limit *l, const char *fmt, ...)
{
	long long now = mono_usec();

	if (now - l->window_start >= LOG_LIMIT_WINDOW_SEC * 1000000LL) {
		if (l->suppressed)
			log_warnx("(%u similar warnings suppressed in the last %d s)", l->suppressed, LOG_LIMIT_WINDOW_SEC);
		l->window_start = now;
		l->n = l->suppressed = 0;
	}
	if (l->n++ >= LOG_LIMIT_BURST) {
		l->suppressed++;
		return;
	}
	LOG_BODY(log_emit(4, fmt, ap));
}

void fatal(const char *fmt, ...)
{
	int e = errno;
	LOG_BODY(emit_errno(3, e, fmt, ap));
	exit(1);
}

void fatalx(const char *fmt, ...)
{
	LOG_BODY(log_emit(3, fmt, ap));
	exit(1);
}
