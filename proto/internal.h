/* Shared between the files of proto/ only. */
#pragma once
#include "purged/proto_pack.h"

/* Fill @err (may be NULL) and return -EBADMSG (-E2BIG for too_large). */
int proto_fail(struct proto_error *err, enum purge_err code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * The first step of proto_unpack_json: prescan, unpack into msgpack-c objects (the top a
 * map). The objects live until proto_unpack_release(), which must follow.
 */
int proto_unpack_object(const void *payload, size_t len, msgpack_object *ret, struct proto_error *err);
void proto_unpack_release(void);

/* Limits every decoded value obeys, whatever it is decoded into. */
int proto_check_string(const char *p, size_t n, const char *what, struct proto_error *err);
int proto_check_key(const msgpack_object *key, struct proto_error *err);
/* Depth, and the entry count of arrays and maps. */
int proto_check_container(const msgpack_object *o, int depth, struct proto_error *err);

/* Check that containers claim no more entries than the payload can hold. */
int proto_prescan(const uint8_t *p, size_t len, struct proto_error *err);
