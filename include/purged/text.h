/*
 * Safe text: every string that leaves a process (replies, errors, journal
 * and audit records, log lines) goes through here, so that bytes a caller,
 * a child or a backend chose can neither break an encoder (invalid UTF-8
 * makes jansson refuse a string) nor forge a log line (a newline followed
 * by "<2>..."). Used by every program; no allocation, no I/O.
 */
#pragma once
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

enum {
	/* C0 and C1 controls and DEL become \n, \t, \r or \xNN / \u00NN: one log line stays one line. */
	TEXT_ESCAPE_CONTROLS = 1u << 0,
};

/*
 * Copy @n bytes of @src into @dst (@cap bytes, @cap >= 1) as valid UTF-8:
 * each byte of an invalid sequence becomes U+FFFD, a NUL byte becomes
 * U+FFFD, and a cut for lack of room never splits a character or an escape.
 * Always NUL-terminates. Returns the bytes written (without the NUL).
 */
size_t text_safe(char *dst, size_t cap, const char *src, size_t n, unsigned flags);

/* vsnprintf into @dst, then text_safe() the result: the one way to format an outgoing text. */
size_t text_vformat(char *dst, size_t cap, unsigned flags, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));
size_t text_format(char *dst, size_t cap, unsigned flags, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* RFC 3629 UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF (what jansson accepts). */
bool text_utf8_valid(const char *s, size_t n);
