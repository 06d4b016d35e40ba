/*
 * The protocol at the msgpack level, for messages built without a JSON tree
 * (the supervisor's task objects, its hottest reply) and for turning such a
 * packed value back into JSON. Everything else uses proto.h's JSON API.
 */
#pragma once
#include <msgpack.h>
#include "purged/proto.h"

/* Pack a JSON value as proto_encode does. 0, -E2BIG, -EINVAL or -ENOMEM. */
int proto_pack_json(msgpack_packer *pk, const json_t *j);
/*
 * A packed map -> JSON tree, with proto_decode's limits (but no message
 * schema). 0 with *ret, or a negative errno with *err filled.
 */
int proto_unpack_json(const void *payload, size_t len, json_t **ret, struct proto_error *err);

/*
 * A frame by hand: begin (length prefix reserved), pack the message with
 * @pk, then end with the packing's status @r: 0 and the whole frame in
 * *ret_buf (malloc'ed) / *ret_len, or a negative errno (-E2BIG past
 * PURGE_FRAME_MAX). The buffer is freed on every error.
 */
int proto_frame_begin(msgpack_sbuffer *sb, msgpack_packer *pk);
int proto_frame_end(msgpack_sbuffer *sb, int r, uint8_t **ret_buf, size_t *ret_len);
/* The head of a successful reply, {id, ok: true, result: ...}: the result is packed next. */
int proto_pack_reply_ok_head(msgpack_packer *pk, uint64_t id);
