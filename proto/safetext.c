/* Safe text for everything that leaves a process; see purged/text.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "purged/text.h"

/*
 * Length of the valid UTF-8 sequence at @s (at most @n bytes), with its code
 * point in *cp; 0 when the bytes there are not one.
 */
static size_t utf8_seq(const unsigned char *s, size_t n, unsigned *ret_cp)
{
	unsigned c = s[0], cp, min;
	size_t k;

	if (c < 0x80) {
		*ret_cp = c;
		return 1;
	} else if ((c & 0xe0) == 0xc0) {
		k = 1, cp = c & 0x1f, min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		k = 2, cp = c & 0x0f, min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		k = 3, cp = c & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (k >= n)
		return 0;
	for (size_t j = 1; j <= k; j++) {
		if ((s[j] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[j] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*ret_cp = cp;
	return k + 1;
}

bool text_utf8_valid(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	unsigned cp;

	for (size_t i = 0, k; i < n; i += k)
		if (s[i] < 0x80)
			k = 1;
		else if (!(k = utf8_seq(s + i, n - i, &cp)))
			return false;
	return true;
}

static size_t escape(char *out, unsigned cp)
{
	switch (cp) {
	case '\n': return (size_t)sprintf(out, "\\n");
	case '\t': return (size_t)sprintf(out, "\\t");
	case '\r': return (size_t)sprintf(out, "\\r");
	}
	return (size_t)sprintf(out, cp < 0x80 ? "\\x%02x" : "\\u%04x", cp);
}

size_t text_safe(char *dst, size_t cap, const char *src, size_t n, unsigned flags)
{
	static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD */
	const unsigned char *s = (const unsigned char *)src;
	size_t o = 0, i = 0;

	if (cap == 0)
		return 0;
	while (i < n) {
		char esc[8];
		const char *piece;
		size_t len, adv;
		unsigned cp;

		adv = s[i] ? utf8_seq(s + i, n - i, &cp) : 0;
		if (adv == 0) {
			piece = replacement, len = 3, adv = 1;
		} else if ((flags & TEXT_ESCAPE_CONTROLS) && (cp < 0x20 || (cp >= 0x7f && cp < 0xa0))) {
			len = escape(esc, cp);
			piece = esc;
		} else {
			piece = (const char *)s + i, len = adv;
		}
		if (o + len >= cap)
			break;
		memcpy(dst + o, piece, len);
		o += len;
		i += adv;
	}
	dst[o] = '\0';
	return o;
}

size_t text_vformat(char *dst, size_t cap, unsigned flags, const char *fmt, va_list ap)
{
	char stackbuf[2048], *raw = stackbuf;
	va_list aq;
	int n;

	if (cap == 0)
		return 0;
	va_copy(aq, ap);
	n = vsnprintf(stackbuf, sizeof(stackbuf), fmt, aq);
	va_end(aq);
	if (n < 0) {
		dst[0] = '\0';
		return 0;
	}
	/* Room for what the caller can hold: replacements only grow the text, so no more is needed. */
	if ((size_t)n >= sizeof(stackbuf) && cap > sizeof(stackbuf)) {
		size_t want = (size_t)n < cap ? (size_t)n + 1 : cap;
		raw = malloc(want);
		if (!raw)
			raw = stackbuf; /* out of memory: the shorter text is still safe */
		else
			n = vsnprintf(raw, want, fmt, ap);
	}
	size_t have = raw == stackbuf ? sizeof(stackbuf) : ((size_t)n < cap ? (size_t)n + 1 : cap);
	size_t len = (size_t)n < have ? (size_t)n : have - 1;
	size_t r = text_safe(dst, cap, raw, len, flags);
	if (raw != stackbuf)
		free(raw);
	return r;
}

size_t text_format(char *dst, size_t cap, unsigned flags, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t r = text_vformat(dst, cap, flags, fmt, ap);
	va_end(ap);
	return r;
}
