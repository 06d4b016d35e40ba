/*
 * The HTTP client of the executor's REST backends (iTop, Redmine), on
 * libcurl. The backend's host is resolved once, before the sandbox closes,
 * and pinned with CURLOPT_RESOLVE: nothing is resolved inside the sandbox.
 * One connection pool per task (keep-alive), timeouts, TLS verification on
 * unless `insecure` is written explicitly, retries with backoff for
 * idempotent requests. Executor only.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include "daemon/sandbox/sandbox.h"

struct http_client;

struct http_response {
	long status;        /* 0 when no HTTP answer came (see error) */
	char *body;         /* NUL-terminated, may be empty */
	size_t len;
	char error[256];    /* transport error, when status is 0 */
	bool timed_out;     /* status 0 because no complete answer came within the timeout */
	bool maybe_sent;    /* status 0 after the request went out (timeout, connection dropped): its
			     * outcome on the server is unknown. */
};

/*
 * Set up a client for @url (http:// or https://) from a backend's settings:
 * connect_timeout, timeout (seconds), ca_file, insecure. Resolves the host.
 * @header is one extra request header (credentials), copied and wiped at free.
 * Returns NULL with @err set.
 */
struct http_client *http_client_new(const char *url, const json_t *settings, const char *header, char *err,
				    size_t errlen);
struct http_client *http_client_free(struct http_client *c);
/* What the sandbox must allow: TCP to the host's port, the CA files when https. */
void http_client_policy(const struct http_client *c, struct sandbox_policy *p);
/* "scheme://host:port/path" without credentials, for messages. */
const char *http_client_where(const struct http_client *c);
/* The configured URL (without user info), where a request to path "" goes exactly. */
const char *http_client_url(const struct http_client *c);

/*
 * One request to @path (appended to the URL's path; may carry a query; "" is the
 * configured URL exactly, trailing slash or not).
 * GET and DELETE are retried on transport errors, 5xx and 429 (3 tries,
 * 0.5 s then 1 s apart). @body may be NULL; @ctype goes with it.
 * Returns 0 with @resp filled (free with http_response_clear), or -1 when
 * no answer came (resp->error says why).
 */
int http_request(struct http_client *c, const char *method, const char *path, const char *ctype, const char *body,
		 size_t body_len, struct http_response *resp);
void http_response_clear(struct http_response *r);

/*
 * Requests of @method (no body) driven by the caller, for adaptive concurrency, over
 * reused connections (curl multi, at most @max). While fewer than *@window (read at each
 * turn, clamped to 1..@max) are in flight, @next is asked for one more: it returns 1 with
 * a path (malloc'd; freed here) and a tag, 0 for "none now, ask again in 20 ms" (a back
 * off), or -1 for "none now" (the drive ends once nothing is in flight). Every answer goes
 * to @done exactly once, as it completes, NOT retried: status 0 is a transport error
 * (with timed_out and maybe_sent set as http_request does); the caller decides.
 */
void http_drive(struct http_client *c, const char *method, unsigned max, const unsigned *window,
		int (*next)(void *userdata, char **ret_path, size_t *ret_tag),
		void (*done)(void *userdata, size_t tag, const char *path, const struct http_response *resp),
		void *userdata);

/* Authenticate every request with HTTP Basic (copies are wiped at free). */
void http_client_basic_auth(struct http_client *c, const char *user, const char *password);

/* Percent-encode @s for a form body (libcurl's curl_easy_escape). Caller frees with free(). */
char *http_escape(struct http_client *c, const char *s);

/* Parse @r's body as JSON; NULL if it is not. */
json_t *http_json(const struct http_response *r);
/* Requests made and connections opened so far (for plans, benchmarks and the log). */
void http_client_stats(const struct http_client *c, unsigned long *ret_requests, unsigned long *ret_connections);
