/*
 * A successful reply's result, straight from msgpack to compact JSON text:
 * purged-rest relays most replies as they are, and building a jansson tree
 * only to dump it cost more than the rest of the request (profile of GET
 * /v1/tasks/ID). The text is the one json_dumps(JSON_COMPACT) gives, and the
 * values obey the same limits as proto_decode's (depth, sizes, UTF-8, NUL,
 * keys); duplicate keys, which only a broken supervisor could send, are not
 * looked for.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "proto/internal.h"
#include "purged/text.h"

struct text {
	char *p;
	size_t len, cap;
};

static int grow(struct text *t, size_t n)
{
	size_t cap = t->cap ? t->cap : 512;
	while (cap < t->len + n + 1)
		cap *= 2;
	char *p = realloc(t->p, cap);
	if (!p)
		return -ENOMEM;
	t->p = p;
	t->cap = cap;
	return 0;
}

/* Room for a NUL is always kept; it is written once, at the end. */
static inline int put(struct text *t, const char *s, size_t n)
{
	if (t->len + n + 1 > t->cap && grow(t, n) < 0)
		return -ENOMEM;
	memcpy(t->p + t->len, s, n);
	t->len += n;
	return 0;
}

static int put_string(struct text *t, const char *s, size_t n, const char *what, struct proto_error *err)
{
	static const char hex[] = "0123456789ABCDEF"; /* jansson writes \u001F */
	int r = proto_check_string(s, n, what, err);
	if (r < 0)
		return r;
	if (!text_utf8_valid(s, n))
		return proto_fail(err, PURGE_ERR_BAD_REQUEST, "%s: string is not valid UTF-8", what);
	if (put(t, "\"", 1) < 0)
		return -ENOMEM;
	size_t run = 0; /* bytes copied as they are, in one go */
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[7];
		size_t k = 0;
		if (c == '"' || c == '\\') {
			esc[0] = '\\', esc[1] = (char)c, k = 2;
		} else if (c < 0x20) {
			esc[0] = '\\';
			k = 2;
			switch (c) {
			case '\b': esc[1] = 'b'; break;
			case '\f': esc[1] = 'f'; break;
			case '\n': esc[1] = 'n'; break;
			case '\r': esc[1] = 'r'; break;
			case '\t': esc[1] = 't'; break;
			default:
				memcpy(esc + 1, "u00", 3);
				esc[4] = hex[c >> 4], esc[5] = hex[c & 15], k = 6;
			}
		} else {
			continue;
		}
		if ((i > run && put(t, s + run, i - run) < 0) || put(t, esc, k) < 0)
			return -ENOMEM;
		run = i + 1;
	}
	if ((n > run && put(t, s + run, n - run) < 0) || put(t, "\"", 1) < 0)
		return -ENOMEM;
	return 0;
}

static int render(const msgpack_object *o, int depth, struct text *t, struct proto_error *err)
{
	char num[32];
	int r = proto_check_container(o, depth, err), n;

	if (r < 0)
		return r;
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		return put(t, "null", 4);
	case MSGPACK_OBJECT_BOOLEAN:
		return o->via.boolean ? put(t, "true", 4) : put(t, "false", 5);
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		if (o->via.u64 > INT64_MAX)
			return proto_fail(err, PURGE_ERR_BAD_REQUEST, "integer %" PRIu64 " out of range", o->via.u64);
		n = snprintf(num, sizeof(num), "%" PRIu64, o->via.u64);
		return put(t, num, (size_t)n);
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		n = snprintf(num, sizeof(num), "%" PRId64, o->via.i64);
		return put(t, num, (size_t)n);
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		if (!isfinite(o->via.f64))
			return proto_fail(err, PURGE_ERR_BAD_REQUEST, "non-finite number");
		/*
		 * As jansson writes reals: 17 significant digits, always a '.' or
		 * an exponent, and an exponent with no '+' and no leading zeros.
		 */
		n = snprintf(num, sizeof(num) - 2, "%.17g", o->via.f64);
		char *e = strchr(num, 'e');
		if (!e && !strchr(num, '.')) {
			memcpy(num + n, ".0", 3);
			n += 2;
		} else if (e) {
			char *from = e + 1, *to = e + 1;
			if (*from == '+')
				from++;
			else if (*from == '-')
				from++, to++;
			while (*from == '0' && from[1])
				from++;
			memmove(to, from, strlen(from) + 1);
			n = (int)strlen(num);
		}
		return put(t, num, (size_t)n);
	case MSGPACK_OBJECT_STR:
		return put_string(t, o->via.str.ptr, o->via.str.size, "value", err);
	case MSGPACK_OBJECT_ARRAY:
		if (put(t, "[", 1) < 0)
			return -ENOMEM;
		for (uint32_t i = 0; i < o->via.array.size; i++) {
			if ((i > 0 && put(t, ",", 1) < 0))
				return -ENOMEM;
			if ((r = render(&o->via.array.ptr[i], depth + 1, t, err)) < 0)
				return r;
		}
		return put(t, "]", 1);
	case MSGPACK_OBJECT_MAP:
		if (put(t, "{", 1) < 0)
			return -ENOMEM;
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			const msgpack_object_kv *kv = &o->via.map.ptr[i];
			if ((i > 0 && put(t, ",", 1) < 0))
				return -ENOMEM;
			if ((r = proto_check_key(&kv->key, err)) < 0 ||
			    (r = put_string(t, kv->key.via.str.ptr, kv->key.via.str.size, "map key", err)) < 0)
				return r;
			if (put(t, ":", 1) < 0)
				return -ENOMEM;
			if ((r = render(&kv->val, depth + 1, t, err)) < 0)
				return r;
		}
		return put(t, "}", 1);
	default:
		return proto_fail(err, PURGE_ERR_BAD_REQUEST, "binary and extension values are not accepted");
	}
}

static bool key_is(const msgpack_object *k, const char *name)
{
	size_t n = strlen(name);
	return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n && memcmp(k->via.str.ptr, name, n) == 0;
}

int proto_reply_result_text(const void *payload, size_t len, bool (*wanted)(uint64_t id, void *ctx), void *ctx,
			    uint64_t *ret_id, char **ret_text, size_t *ret_len, struct proto_error *err)
{
	const msgpack_object *id = NULL, *ok = NULL, *result = NULL, *kind = NULL;
	struct text t = { 0 };
	msgpack_object top;
	int r = proto_unpack_object(payload, len, &top, err);

	if (r < 0)
		return r;
	/* Exactly {kind: reply, id, ok: true[, result]}; anything else takes the full decode. */
	r = 0;
	for (uint32_t i = 0; i < top.via.map.size; i++) {
		const msgpack_object_kv *kv = &top.via.map.ptr[i];
		if (key_is(&kv->key, "kind") && !kind)
			kind = &kv->val;
		else if (key_is(&kv->key, "id") && !id)
			id = &kv->val;
		else if (key_is(&kv->key, "ok") && !ok)
			ok = &kv->val;
		else if (key_is(&kv->key, "result") && !result)
			result = &kv->val;
		else
			goto finish;
	}
	if (!kind || !key_is(kind, "reply") || !id || id->type != MSGPACK_OBJECT_POSITIVE_INTEGER || id->via.u64 > INT64_MAX || !ok ||
	    ok->type != MSGPACK_OBJECT_BOOLEAN || !ok->via.boolean || (wanted && !wanted(id->via.u64, ctx)))
		goto finish;
	/* Most text is about as long as its msgpack, plus quotes, colons and commas. */
	r = grow(&t, len + len / 2);
	if (r >= 0)
		r = result ? render(result, 2, &t, err) : put(&t, "{}", 2); /* as json_dumps of no result */
	if (r < 0) {
		free(t.p);
		goto finish;
	}
	t.p[t.len] = '\0';
	*ret_id = id->via.u64;
	*ret_text = t.p;
	*ret_len = t.len;
	r = 1;
finish:
	proto_unpack_release();
	return r;
}
