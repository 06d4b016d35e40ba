/*
 * Logging for every purged process, in the manner of OpenBSD's log.h.
 * Lines go to stderr with a journald priority prefix ("<3>") when stderr is
 * not a terminal (systemd, files, pipes), and are tagged with the process
 * name set by log_init().
 */
#pragma once
#include <stdarg.h>
#include <stdbool.h>

void log_init(const char *tag, bool debug);
void log_settag(const char *tag);
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));   /* adds strerror(errno) */
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Priority as in syslog(3): 3 err, 4 warning, 6 info, 7 debug. */
void log_emit(int prio, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/*
 * A warning that a peer can repeat at will (refusals, limits): at most
 * LOG_LIMIT_BURST lines per LOG_LIMIT_WINDOW_SEC per limiter, then one line
 * saying how many were suppressed. One static limiter per call site.
 */
#define LOG_LIMIT_BURST 5
#define LOG_LIMIT_WINDOW_SEC 10
struct log_limit {
	long long window_start; /* monotonic usec */
	unsigned n, suppressed;
};
void log_warnx_limited(struct log_limit *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Startup failures and broken invariants only: log and exit(1). */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
