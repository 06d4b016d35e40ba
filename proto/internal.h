/* Shared between the files of proto/ only. */
#pragma once
#include "purged/proto.h"

/* Fill @err (may be NULL) and return -EBADMSG (-E2BIG for too_large). */
int proto_fail(struct proto_error *err, enum purge_err code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* msgpack payload -> JSON tree within the protocol's limits; the top must be a map. */
int proto_unpack(const void *payload, size_t len, json_t **ret, struct proto_error *err);

/* Check that containers claim no more entries than the payload can hold. */
int proto_prescan(const uint8_t *p, size_t len, struct proto_error *err);
