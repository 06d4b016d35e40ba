/*
 * msgpack <-> jansson conversion with the protocol's limits (depth, string
 * length, list length, UTF-8, no NUL bytes, string keys only, no duplicate
 * keys). Returns errors, never logs. Used by every program through proto_decode
 * and proto_encode.
 */
#include <math.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "proto/internal.h"
#include "purged/text.h"

int proto_fail(struct proto_error *err, enum purge_err code, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		err->code = code;
		err->peer_version = 0;
		err->peer_build[0] = '\0';
		va_start(ap, fmt);
		/* Messages quote what the peer sent: made safe here, once, for every reply and log line. */
		text_vformat(err->message, sizeof(err->message), TEXT_ESCAPE_CONTROLS, fmt, ap);
		va_end(ap);
	}
	return code == PURGE_ERR_TOO_LARGE ? -E2BIG : -EBADMSG;
}

int proto_check_string(const char *p, size_t n, const char *what, struct proto_error *err)
{
	if (n > PURGE_STRING_MAX)
		return proto_fail(err, PURGE_ERR_TOO_LARGE, "%s: string of %zu bytes exceeds the limit of %u",
				  what, n, PURGE_STRING_MAX);
	if (memchr(p, '\0', n))
		return proto_fail(err, PURGE_ERR_BAD_REQUEST, "%s: string contains a NUL byte", what);
	return 0;
}

int proto_check_key(const msgpack_object *key, struct proto_error *err)
{
	if (key->type != MSGPACK_OBJECT_STR || key->via.str.size == 0 || key->via.str.size > PURGE_NAME_MAX ||
	    memchr(key->via.str.ptr, '\0', key->via.str.size))
		return proto_fail(err, PURGE_ERR_BAD_REQUEST, "map key must be a string of 1 to %d bytes",
				  PURGE_NAME_MAX);
	return 0;
}

int proto_check_container(const msgpack_object *o, int depth, struct proto_error *err)
{
	if (depth > PURGE_DEPTH_MAX)
		return proto_fail(err, PURGE_ERR_BAD_REQUEST, "message nested deeper than %d levels", PURGE_DEPTH_MAX);
	if (o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size > PURGE_LIST_MAX)
		return proto_fail(err, PURGE_ERR_TOO_LARGE, "array of %u entries exceeds the limit of %u",
				  o->via.array.size, PURGE_LIST_MAX);
	if (o->type == MSGPACK_OBJECT_MAP && o->via.map.size > PURGE_LIST_MAX)
		return proto_fail(err, PURGE_ERR_TOO_LARGE, "map of %u entries exceeds the limit of %u",
				  o->via.map.size, PURGE_LIST_MAX);
	return 0;
}

static int to_json(const msgpack_object *o, int depth, json_t **ret, struct proto_error *err)
{
	json_t *j = NULL;
	int r = proto_check_container(o, depth, err);

	if (r < 0)
		return r;
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		j = json_null();
		break;
	case MSGPACK_OBJECT_BOOLEAN:
		j = json_boolean(o->via.boolean);
		break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		if (o->via.u64 > INT64_MAX)
			return proto_fail(err, PURGE_ERR_BAD_REQUEST, "integer %llu out of range",
					  (unsigned long long)o->via.u64);
		j = json_integer((json_int_t)o->via.u64);
		break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		j = json_integer((json_int_t)o->via.i64);
		break;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		if (!isfinite(o->via.f64))
			return proto_fail(err, PURGE_ERR_BAD_REQUEST, "non-finite number");
		j = json_real(o->via.f64);
		break;
	case MSGPACK_OBJECT_STR:
		r = proto_check_string(o->via.str.ptr, o->via.str.size, "value", err);
		if (r < 0)
			return r;
		/* json_stringn validates UTF-8. */
		j = json_stringn(o->via.str.ptr, o->via.str.size);
		if (!j)
			return proto_fail(err, PURGE_ERR_BAD_REQUEST, "string is not valid UTF-8");
		break;
	case MSGPACK_OBJECT_ARRAY:
		j = json_array();
		for (uint32_t i = 0; j && i < o->via.array.size; i++) {
			json_t *v;
			r = to_json(&o->via.array.ptr[i], depth + 1, &v, err);
			if (r < 0) {
				json_decref(j);
				return r;
			}
			json_array_append_new(j, v);
		}
		break;
	case MSGPACK_OBJECT_MAP:
		j = json_object();
		for (uint32_t i = 0; j && i < o->via.map.size; i++) {
			const msgpack_object_kv *kv = &o->via.map.ptr[i];
			char key[PURGE_NAME_MAX + 1];
			json_t *v;

			if ((r = proto_check_key(&kv->key, err)) < 0) {
				json_decref(j);
				return r;
			}
			memcpy(key, kv->key.via.str.ptr, kv->key.via.str.size);
			key[kv->key.via.str.size] = '\0';
			r = to_json(&kv->val, depth + 1, &v, err);
			if (r < 0) {
				json_decref(j);
				return r;
			}
			if (json_object_set_new(j, key, v) < 0) {
				json_decref(j);
				return proto_fail(err, PURGE_ERR_BAD_REQUEST, "map key '%s' is not valid UTF-8", key);
			}
			/* A key already there was replaced, not added: one lookup fewer than asking first. */
			if (json_object_size(j) != i + 1) {
				json_decref(j);
				return proto_fail(err, PURGE_ERR_BAD_REQUEST, "duplicate key '%s'", key);
			}
		}
		break;
	default:
		return proto_fail(err, PURGE_ERR_BAD_REQUEST, "binary and extension values are not accepted");
	}
	if (!j)
		return proto_fail(err, PURGE_ERR_INTERNAL, "out of memory decoding message");
	*ret = j;
	return 0;
}

/*
 * One zone for every decode, cleared after each: msgpack-c's own API would
 * allocate a fresh 8 KiB zone per message. Every program is single-threaded.
 */
static msgpack_zone zone;
static bool zone_ready;

int proto_unpack_object(const void *payload, size_t len, msgpack_object *ret, struct proto_error *err)
{
	size_t off = 0;
	int r;

	if (len == 0)
		return proto_fail(err, PURGE_ERR_BAD_REQUEST, "empty frame");
	if (len > PURGE_FRAME_MAX)
		return proto_fail(err, PURGE_ERR_TOO_LARGE, "frame of %zu bytes exceeds the limit of %u",
				  len, PURGE_FRAME_MAX);
	r = proto_prescan(payload, len, err);
	if (r < 0)
		return r;
	if (!zone_ready) {
		if (!msgpack_zone_init(&zone, MSGPACK_ZONE_CHUNK_SIZE))
			return proto_fail(err, PURGE_ERR_INTERNAL, "out of memory decoding message");
		zone_ready = true;
	}
	switch (msgpack_unpack(payload, len, &off, &zone, ret)) {
	case MSGPACK_UNPACK_SUCCESS:
		break;
	case MSGPACK_UNPACK_EXTRA_BYTES:
		r = proto_fail(err, PURGE_ERR_BAD_REQUEST, "%zu trailing bytes after the message", len - off);
		goto fail;
	case MSGPACK_UNPACK_CONTINUE:
		r = proto_fail(err, PURGE_ERR_BAD_REQUEST, "truncated msgpack value");
		goto fail;
	case MSGPACK_UNPACK_NOMEM_ERROR:
		r = proto_fail(err, PURGE_ERR_TOO_LARGE, "msgpack value too large to decode");
		goto fail;
	default:
		r = proto_fail(err, PURGE_ERR_BAD_REQUEST, "malformed msgpack");
		goto fail;
	}
	if (off != len) {
		r = proto_fail(err, PURGE_ERR_BAD_REQUEST, "%zu trailing bytes after the message", len - off);
		goto fail;
	}
	if (ret->type != MSGPACK_OBJECT_MAP) {
		r = proto_fail(err, PURGE_ERR_BAD_REQUEST, "a message must be a map");
		goto fail;
	}
	return 0;
fail:
	proto_unpack_release();
	return r;
}

void proto_unpack_release(void)
{
	if (zone_ready)
		msgpack_zone_clear(&zone);
}

int proto_unpack_json(const void *payload, size_t len, json_t **ret, struct proto_error *err)
{
	msgpack_object o;
	json_t *j = NULL;
	int r = proto_unpack_object(payload, len, &o, err);

	if (r < 0)
		return r;
	r = to_json(&o, 1, &j, err);
	if (r >= 0)
		*ret = j;
	proto_unpack_release();
	return r;
}

/* msgpack-c's packers return -1 only when the buffer cannot grow. */
#define PACKED(x) ((x) < 0 ? -ENOMEM : 0)

static int pack(msgpack_packer *pk, const json_t *j, int depth)
{
	const char *key;
	json_t *v;
	size_t i;

	if (depth > PURGE_DEPTH_MAX)
		return -EINVAL;
	switch (json_typeof(j)) {
	case JSON_NULL:
		return PACKED(msgpack_pack_nil(pk));
	case JSON_TRUE:
		return PACKED(msgpack_pack_true(pk));
	case JSON_FALSE:
		return PACKED(msgpack_pack_false(pk));
	case JSON_INTEGER:
		return PACKED(msgpack_pack_int64(pk, json_integer_value(j)));
	case JSON_REAL:
		return PACKED(msgpack_pack_double(pk, json_real_value(j)));
	case JSON_STRING:
		if (json_string_length(j) > PURGE_STRING_MAX)
			return -E2BIG;
		if (msgpack_pack_str(pk, json_string_length(j)) < 0)
			return -ENOMEM;
		return PACKED(msgpack_pack_str_body(pk, json_string_value(j), json_string_length(j)));
	case JSON_ARRAY:
		if (json_array_size(j) > PURGE_LIST_MAX)
			return -E2BIG;
		if (msgpack_pack_array(pk, json_array_size(j)) < 0)
			return -ENOMEM;
		json_array_foreach(j, i, v) {
			int r = pack(pk, v, depth + 1);
			if (r < 0)
				return r;
		}
		return 0;
	case JSON_OBJECT:
		if (json_object_size(j) > PURGE_LIST_MAX)
			return -E2BIG;
		if (msgpack_pack_map(pk, json_object_size(j)) < 0)
			return -ENOMEM;
		json_object_foreach((json_t *)j, key, v) {
			size_t n = strlen(key);
			int r;
			if (msgpack_pack_str(pk, n) < 0 || msgpack_pack_str_body(pk, key, n) < 0)
				return -ENOMEM;
			r = pack(pk, v, depth + 1);
			if (r < 0)
				return r;
		}
		return 0;
	}
	return -EINVAL;
}

int proto_pack_json(msgpack_packer *pk, const json_t *j)
{
	return pack(pk, j, 1);
}

int proto_frame_begin(msgpack_sbuffer *sb, msgpack_packer *pk)
{
	msgpack_sbuffer_init(sb);
	/* Most frames are a few hundred bytes: msgpack-c would start every one with 8 KiB. */
	sb->data = malloc(512);
	if (!sb->data)
		return -ENOMEM;
	sb->alloc = 512;
	msgpack_packer_init(pk, sb, msgpack_sbuffer_write);
	/* Reserve the length prefix, patched in by proto_frame_end. */
	return msgpack_sbuffer_write(sb, "\0\0\0\0", 4) < 0 ? -ENOMEM : 0;
}

int proto_frame_end(msgpack_sbuffer *sb, int r, uint8_t **ret_buf, size_t *ret_len)
{
	if (r >= 0 && sb->size - 4 > PURGE_FRAME_MAX)
		r = -E2BIG;
	if (r < 0) {
		msgpack_sbuffer_destroy(sb);
		return r;
	}
	uint32_t n = (uint32_t)(sb->size - 4);
	uint8_t *b = (uint8_t *)sb->data;
	b[0] = n >> 24;
	b[1] = n >> 16;
	b[2] = n >> 8;
	b[3] = n;
	*ret_len = sb->size;
	*ret_buf = (uint8_t *)msgpack_sbuffer_release(sb);
	return 0;
}

int proto_pack_reply_ok_head(msgpack_packer *pk, uint64_t id)
{
	/* {kind: reply, id, ok: true, result: ...}: the caller packs the result next. */
	if (msgpack_pack_map(pk, 4) < 0 || msgpack_pack_str_with_body(pk, "kind", 4) < 0 ||
	    msgpack_pack_str_with_body(pk, "reply", 5) < 0 || msgpack_pack_str_with_body(pk, "id", 2) < 0 ||
	    msgpack_pack_uint64(pk, id) < 0 || msgpack_pack_str_with_body(pk, "ok", 2) < 0 ||
	    msgpack_pack_true(pk) < 0 || msgpack_pack_str_with_body(pk, "result", 6) < 0)
		return -ENOMEM;
	return 0;
}

#define STR(pk, s) msgpack_pack_str_with_body(pk, s, strlen(s))

int proto_encode_request(uint64_t id, enum purge_op op, const json_t *args, const char *auth, uint8_t **ret_buf,
			 size_t *ret_len)
{
	const char *name = purge_op_to_string(op);
	msgpack_sbuffer sb;
	msgpack_packer pk;

	if (!name || (args && !json_is_object(args)) ||
	    (auth && (strlen(auth) > PURGE_AUTH_MAX || !text_utf8_valid(auth, strlen(auth)))))
		return -EINVAL;
	int r = proto_frame_begin(&sb, &pk);
	/* The keys and order of proto_request_new, then auth. */
	if (r >= 0 && (msgpack_pack_map(&pk, auth ? 6 : 5) < 0 || STR(&pk, "kind") < 0 || STR(&pk, "request") < 0 ||
		       STR(&pk, "v") < 0 ||
		       msgpack_pack_int64(&pk, PURGE_PROTO_VERSION) < 0 || STR(&pk, "id") < 0 ||
		       msgpack_pack_int64(&pk, (int64_t)id) < 0 || STR(&pk, "op") < 0 || STR(&pk, name) < 0 ||
		       STR(&pk, "args") < 0))
		r = -ENOMEM;
	if (r >= 0)
		r = args ? pack(&pk, args, 2) : PACKED(msgpack_pack_map(&pk, 0));
	if (r >= 0 && auth && (STR(&pk, "auth") < 0 || STR(&pk, auth) < 0))
		r = -ENOMEM;
	return proto_frame_end(&sb, r, ret_buf, ret_len);
}

int proto_encode(const json_t *msg, uint8_t **ret_buf, size_t *ret_len)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;

	if (!json_is_object(msg))
		return -EINVAL;
	int r = proto_frame_begin(&sb, &pk);
	if (r >= 0)
		r = pack(&pk, msg, 1);
	return proto_frame_end(&sb, r, ret_buf, ret_len);
}
