/* Clocks and RFC 3339 formatting shared by every program. */
#include <stdio.h>
#include <time.h>
#include "purged/util.h"

int64_t now_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t mono_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

const char *format_rfc3339(int64_t usec, char *buf, size_t n)
{
	/* A task's times are often the same second: the last one is kept (every program is single-threaded). */
	static time_t last_t = -1;
	static char last[32];
	time_t t = (time_t)(usec / 1000000);
	struct tm tm;

	if (t != last_t) {
		if (!gmtime_r(&t, &tm) || strftime(last, sizeof(last), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
			snprintf(last, sizeof(last), "1970-01-01T00:00:00Z");
		last_t = t;
	}
	snprintf(buf, n, "%s", last);
	return buf;
}
