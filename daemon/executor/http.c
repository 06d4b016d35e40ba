/* libcurl client for the executor's REST backends; see http.h. Executor only. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "daemon/executor/backend.h"
#include "daemon/executor/http.h"
#include "purged/log.h"
#include "purged/util.h"

#define TRIES 3

struct http_client {
	CURL *easy;                 /* sequential requests reuse its connection */
	CURLSH *share;              /* connection cache shared with parallel handles */
	struct curl_slist *resolve; /* host:port:address, resolved before the sandbox */
	struct curl_slist *headers;
	char *base;                 /* scheme://host:port/path without a trailing slash */
	char *url;                  /* the configured URL exactly: where a request to path "" goes */
	char *url_shown;            /* the same without user info, for messages */
	char *header_copy;          /* to wipe */
	char *basic_user, *basic_password;
	char *ca_file;
	bool https, insecure;
	long connect_timeout, timeout;
	uint16_t port;
	unsigned long requests;
	long connections;
};

struct buf {
	char *p;
	size_t len;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct buf *b = ud;
	size_t n = size * nmemb;
	/* Backend answers are JSON documents; 64 MiB is far past any real one. */
	if (b->len + n > (64u << 20))
		return 0;
	b->p = xrealloc(b->p, b->len + n + 1);
	memcpy(b->p + b->len, ptr, n);
	b->len += n;
	b->p[b->len] = '\0';
	return n;
}

static long setting_long(const json_t *s, const char *key, long def)
{
	json_t *v = json_object_get(s, key);
	return json_is_integer(v) ? (long)json_integer_value(v) : def;
}

struct http_client *http_client_new(const char *url, const json_t *settings, const char *header, char *err,
				    size_t errlen)
{
	struct http_client *c = xcalloc(1, sizeof(*c));
	char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
	CURLU *u = curl_url();
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	char addr[INET6_ADDRSTRLEN + 2] = "";
	int r;

	if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
		snprintf(err, errlen, "url '%s' is not a valid http(s) URL", url);
		goto fail;
	}
	if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
		snprintf(err, errlen, "url '%s': only http and https are supported", url);
		goto fail;
	}
	c->https = strcmp(scheme, "https") == 0;
	c->port = (uint16_t)atoi(port);
	/* Resolve now: inside the sandbox there is no /etc/hosts, no resolver, no NSS modules. */
	char bare[256];
	snprintf(bare, sizeof(bare), "%s", host);
	if (bare[0] == '[') {
		memmove(bare, bare + 1, strlen(bare));
		bare[strcspn(bare, "]")] = '\0';
	}
	r = getaddrinfo(bare, port, &hints, &ai);
	if (r != 0 || !ai) {
		snprintf(err, errlen, "cannot resolve '%s': %s", bare, gai_strerror(r));
		goto fail;
	}
	if (ai->ai_family == AF_INET6) {
		addr[0] = '[';
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, addr + 1, INET6_ADDRSTRLEN);
		strcat(addr, "]");
	} else {
		inet_ntop(AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, addr, sizeof(addr));
	}
	freeaddrinfo(ai);
	char *entry = xasprintf("%s:%s:%s", bare, port, addr);
	c->resolve = curl_slist_append(NULL, entry);
	free(entry);

	size_t pl = strlen(path);
	while (pl > 0 && path[pl - 1] == '/')
		pl--;
	c->base = xasprintf("%s://%s:%s%.*s", scheme, host, port, (int)pl, path);
	c->url = xstrdup(url);
	char *shown = NULL;
	curl_url_set(u, CURLUPART_USER, NULL, 0);
	curl_url_set(u, CURLUPART_PASSWORD, NULL, 0);
	curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0);
	c->url_shown = xstrdup(curl_url_get(u, CURLUPART_URL, &shown, 0) == CURLUE_OK ? shown : c->base);
	curl_free(shown);
	c->connect_timeout = setting_long(settings, "connect_timeout", 10);
	c->timeout = setting_long(settings, "timeout", 60);
	c->insecure = json_is_true(json_object_get(settings, "insecure"));
	if (json_is_string(json_object_get(settings, "ca_file")))
		c->ca_file = xstrdup(json_string_value(json_object_get(settings, "ca_file")));
	if (header) {
		c->header_copy = xstrdup(header);
		c->headers = curl_slist_append(NULL, c->header_copy);
	}
	c->headers = curl_slist_append(c->headers, "Accept: application/json");
	c->headers = curl_slist_append(c->headers, "Expect:");
	c->share = curl_share_init();
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	c->easy = curl_easy_init();
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_url_cleanup(u);
	return c;
fail:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_url_cleanup(u);
	http_client_free(c);
	return NULL;
}

struct http_client *http_client_free(struct http_client *c)
{
	if (!c)
		return NULL;
	if (c->easy)
		curl_easy_cleanup(c->easy);
	if (c->share)
		curl_share_cleanup(c->share);
	curl_slist_free_all(c->resolve);
	/* The header list holds a copy of the credentials too. */
	for (struct curl_slist *h = c->headers; h; h = h->next)
		explicit_bzero(h->data, strlen(h->data));
	curl_slist_free_all(c->headers);
	freezero_str(c->header_copy);
	freezero_str(c->basic_user);
	freezero_str(c->basic_password);
	free(c->base);
	freezero_str(c->url);
	free(c->url_shown);
	free(c->ca_file);
	free(c);
	return NULL;
}

void http_client_policy(const struct http_client *c, struct sandbox_policy *p)
{
	p->network = true;
	if (p->n_tcp_ports < SANDBOX_MAX_PORTS)
		p->tcp_ports[p->n_tcp_ports++] = c->port;
	if (c->https) {
		/* TLS needs the CA store and OpenSSL's configuration, read-only. */
		static const char *const tls_paths[] = { "/etc/ssl", "/usr/lib/ssl", "/usr/share/ca-certificates" };
		for (size_t i = 0; i < 3 && p->n_read_paths < SANDBOX_MAX_PATHS; i++)
			p->read_paths[p->n_read_paths++] = tls_paths[i];
		if (c->ca_file && p->n_read_paths < SANDBOX_MAX_PATHS)
			p->read_paths[p->n_read_paths++] = c->ca_file;
	}
}

const char *http_client_where(const struct http_client *c)
{
	return c->base;
}

const char *http_client_url(const struct http_client *c)
{
	return c->url_shown;
}

static void setup(struct http_client *c, CURL *h, const char *method, const char *url, const char *ctype,
		  const char *body, size_t body_len, struct buf *out, char *errbuf, struct curl_slist **extra)
{
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_SHARE, c->share);
	curl_easy_setopt(h, CURLOPT_RESOLVE, c->resolve);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, c->connect_timeout);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, c->timeout);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "purged/" "0.1");
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (c->insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (c->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
	if (c->basic_user) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
		curl_easy_setopt(h, CURLOPT_USERNAME, c->basic_user);
		curl_easy_setopt(h, CURLOPT_PASSWORD, c->basic_password);
	}
	*extra = NULL;
	struct curl_slist *hdrs = NULL;
	for (struct curl_slist *s = c->headers; s; s = s->next)
		hdrs = curl_slist_append(hdrs, s->data);
	if (body) {
		char ct[128];
		snprintf(ct, sizeof(ct), "Content-Type: %s", ctype ? ctype : "application/json");
		hdrs = curl_slist_append(hdrs, ct);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)body_len);
	} else if (!strcmp(method, "GET")) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, NULL);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	*extra = hdrs;
}

static void free_headers(struct curl_slist *hdrs)
{
	for (struct curl_slist *s = hdrs; s; s = s->next)
		explicit_bzero(s->data, strlen(s->data));
	curl_slist_free_all(hdrs);
}

static bool retryable(const char *method, long status, CURLcode rc)
{
	bool idempotent = !strcmp(method, "GET") || !strcmp(method, "DELETE") || !strcmp(method, "PUT");
	return idempotent && (rc != CURLE_OK || status >= 500 || status == 429);
}

static void pause_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static void count_connects(struct http_client *c, CURL *h)
{
	long n = 0;
	if (curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &n) == CURLE_OK)
		c->connections += n;
	c->requests++;
}

int http_request(struct http_client *c, const char *method, const char *path, const char *ctype, const char *body,
		 size_t body_len, struct http_response *resp)
{
	/* An empty path is the configured URL exactly (iTop's rest.php: "rest.php/" is a 404 behind nginx). */
	char *url = path[0] ? xasprintf("%s/%s", c->base, path[0] == '/' ? path + 1 : path) : xstrdup(c->url);
	char errbuf[CURL_ERROR_SIZE];

	memset(resp, 0, sizeof(*resp));
	for (int attempt = 1; attempt <= TRIES; attempt++) {
		struct buf out = { 0 };
		struct curl_slist *hdrs;
		CURLcode rc;

		errbuf[0] = '\0';
		setup(c, c->easy, method, url, ctype, body, body_len, &out, errbuf, &hdrs);
		rc = curl_easy_perform(c->easy);
		free_headers(hdrs);
		count_connects(c, c->easy);
		http_response_clear(resp);
		resp->body = out.p ? out.p : xstrdup("");
		resp->len = out.len;
		if (rc == CURLE_OK) {
			curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &resp->status);
		} else {
			long sent = 0;
			snprintf(resp->error, sizeof(resp->error), "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
			resp->timed_out = rc == CURLE_OPERATION_TIMEDOUT;
			curl_easy_getinfo(c->easy, CURLINFO_REQUEST_SIZE, &sent);
			resp->maybe_sent = sent > 0;
		}
		if (!retryable(method, resp->status, rc) || attempt == TRIES)
			break;
		log_info("%s %s: %s; retrying (%d of %d)", method, path,
			 rc != CURLE_OK ? resp->error : "server error", attempt + 1, TRIES);
		pause_ms(500L * attempt);
	}
	free(url);
	return resp->status ? 0 : -1;
}

void http_response_clear(struct http_response *r)
{
	free(r->body);
	r->body = NULL;
	r->len = 0;
	r->status = 0;
	r->error[0] = '\0';
	r->timed_out = r->maybe_sent = false;
}

void http_client_basic_auth(struct http_client *c, const char *user, const char *password)
{
	freezero_str(c->basic_user);
	freezero_str(c->basic_password);
	c->basic_user = xstrdup(user);
	c->basic_password = xstrdup(password);
}

char *http_escape(struct http_client *c, const char *s)
{
	char *e = curl_easy_escape(c->easy, s, 0), *copy;
	if (!e)
		fatalx("out of memory encoding a form field");
	copy = xstrdup(e);
	explicit_bzero(e, strlen(e)); /* form fields carry the password */
	curl_free(e);
	return copy;
}

json_t *http_json(const struct http_response *r)
{
	return r->body ? json_loadb(r->body, r->len, 0, NULL) : NULL;
}

void http_client_stats(const struct http_client *c, unsigned long *ret_requests, unsigned long *ret_connections)
{
	*ret_requests = c->requests;
	*ret_connections = (unsigned long)c->connections;
}

struct slot {
	CURL *h;
	size_t tag;
	struct buf out;
	struct curl_slist *hdrs;
	char errbuf[CURL_ERROR_SIZE];
	char *url, *path;
};

void http_drive(struct http_client *c, const char *method, unsigned max, const unsigned *window,
		int (*next)(void *userdata, char **ret_path, size_t *ret_tag),
		void (*done)(void *userdata, size_t tag, const char *path, const struct http_response *resp),
		void *userdata)
{
	CURLM *m = curl_multi_init();
	struct slot *slots;
	unsigned active = 0;

	if (max == 0)
		max = 1;
	slots = xcalloc(max, sizeof(*slots));
	/* Never more connections than the largest window. */
	curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)max);
	for (unsigned s = 0; s < max; s++)
		slots[s].h = curl_easy_init();

	for (;;) {
		bool later = false;
		unsigned limit = *window < 1 ? 1 : *window > max ? max : *window;
		for (unsigned s = 0; s < max && active < limit; s++) {
			struct slot *sl = &slots[s];
			char *path;
			size_t tag;
			int k;
			if (sl->url)
				continue;
			k = next(userdata, &path, &tag);
			if (k <= 0) {
				later = k == 0;
				break;
			}
			sl->tag = tag;
			sl->path = path;
			sl->url = xasprintf("%s/%s", c->base, path);
			sl->out = (struct buf){ 0 };
			sl->errbuf[0] = '\0';
			setup(c, sl->h, method, sl->url, NULL, NULL, 0, &sl->out, sl->errbuf, &sl->hdrs);
			curl_easy_setopt(sl->h, CURLOPT_PRIVATE, sl);
			curl_multi_add_handle(m, sl->h);
			active++;
		}
		if (active == 0) {
			if (!later)
				break;
			pause_ms(20);
			continue;
		}
		int running = 0, numfds = 0, left = 0;
		curl_multi_perform(m, &running);
		CURLMsg *msg;
		while ((msg = curl_multi_info_read(m, &left))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			struct slot *sl = NULL;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&sl);
			struct http_response resp = { 0 };
			CURLcode rc = msg->data.result;
			curl_multi_remove_handle(m, sl->h);
			free_headers(sl->hdrs);
			sl->hdrs = NULL;
			count_connects(c, sl->h);
			if (rc == CURLE_OK) {
				curl_easy_getinfo(sl->h, CURLINFO_RESPONSE_CODE, &resp.status);
			} else {
				long sent = 0;
				snprintf(resp.error, sizeof(resp.error), "%s",
					 sl->errbuf[0] ? sl->errbuf : curl_easy_strerror(rc));
				resp.timed_out = rc == CURLE_OPERATION_TIMEDOUT;
				curl_easy_getinfo(sl->h, CURLINFO_REQUEST_SIZE, &sent);
				resp.maybe_sent = sent > 0;
			}
			resp.body = sl->out.p ? sl->out.p : xstrdup("");
			resp.len = sl->out.len;
			active--;
			done(userdata, sl->tag, sl->path, &resp);
			free(resp.body);
			free(sl->url);
			free(sl->path);
			sl->url = sl->path = NULL;
		}
		if (running)
			curl_multi_poll(m, NULL, 0, later ? 20 : 1000, &numfds);
	}
	for (unsigned s = 0; s < max; s++)
		curl_easy_cleanup(slots[s].h);
	free(slots);
	curl_multi_cleanup(m);
}

/* prepare() of the REST backends; see backend.h. */
int backend_prepare_http(struct backend_ctx *ctx, struct sandbox_policy *p, const char *header)
{
	const char *url = json_string_value(json_object_get(ctx->settings, "url"));
	char err[300];

	if (json_is_true(json_object_get(ctx->settings, "insecure")))
		log_warnx("target '%s': insecure = yes: the TLS certificate of %s is NOT verified", ctx->target, url);
	ctx->http = http_client_new(url ? url : "", ctx->settings, header, err, sizeof(err));
	if (!ctx->http)
		return backend_fail(ctx, "target '%s': %s", ctx->target, err);
	http_client_policy(ctx->http, p);
	return 0;
}
