/* Small helpers shared by every program: allocation, time, blocking frame I/O. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "purged/proto.h"

/* Allocation that aborts on OOM: daemon and tools only, never proto/. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Wipe and free a secret string (accepts NULL). */
void freezero_str(char *s);
/* Overwrite every string value of a JSON object of secrets (accepts NULL); the object stays. */
void json_wipe_strings(json_t *obj);

/* SHA-256 of @s: raw, or as 64 lowercase hex digits and a NUL. */
void sha256_raw(const char *s, unsigned char out[32]);
void sha256_hex(const char *s, char out[65]);
/* Compare in time independent of where the buffers differ. */
bool memeq_const_time(const void *a, const void *b, size_t n);
/* Lowercase hex of a 32-byte digest into @out (65 bytes with the NUL). */
void sha256_to_hex(const unsigned char digest[32], char out[65]);

/* base64 (RFC 4648, nettle) for binary bytes carried in JSON: archives' Redis payloads,
 * archive chunks in replies. malloc'ed, NUL-terminated; NULL on ENOMEM only. */
char *b64_encode(const void *data, size_t len);
/* 0 with *ret (malloc'ed) of *ret_len bytes, or -1 for text that is not base64 (or ENOMEM). */
int b64_decode(const char *text, size_t text_len, unsigned char **ret, size_t *ret_len);

/* Wall clock in microseconds since the epoch, and a monotonic clock in microseconds. */
int64_t now_usec(void);
int64_t mono_usec(void);
/* RFC 3339 UTC with seconds ("2026-11-29T14:11:28Z") into @buf (at least 21 bytes). */
const char *format_rfc3339(int64_t usec, char *buf, size_t n);

/*
 * Blocking frame I/O on a file descriptor, for purgectl and the executor.
 * frame_send: encode and write a whole frame; 0 or a negative errno.
 * frame_recv: read until one whole frame is there, decode it as one of
 * @allowed kinds. Returns 0 with *ret_msg, -EPIPE at a clean EOF between
 * frames, -ECONNRESET at EOF inside a frame, other negative errno with
 * *reterr filled for a bad frame.
 */
int frame_send(int fd, const json_t *msg);
int frame_recv(int fd, struct proto_reader *r, unsigned allowed,
	       enum purge_msg_type *ret_type, json_t **ret_msg, struct proto_error *reterr);
