/*
 * purged-rest's clients, by address: what one client may hold (plans and
 * synchronous purges waiting on the supervisor), and the requests refused
 * here without a token, reported to the supervisor in aggregate so that it
 * audits them ("N requests from ADDR without a bearer token") with one
 * fdatasync per batch, not one per request. Looked up once per connection,
 * never per request. purged-rest only.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include "daemon/rest/rest.h"
#include "purged/messages.h"
#include "purged/log.h"
#include "purged/util.h"

#define BUCKETS 256
#define MAX_CLIENTS 4096 /* past this, refusals of new addresses count under OTHER */
#define OTHER "other addresses"

struct rest_client {
	char addr[INET6_ADDRSTRLEN];
	unsigned refs;                 /* connections, and requests that outlive theirs */
	unsigned lasting;              /* plans and synchronous purges waiting */
	uint64_t refused[_REFUSAL_MAX];
	struct rest_client *next;
};

static struct rest_client *buckets[BUCKETS];
static unsigned n_clients;
static uv_timer_t report_timer;
static struct log_limit busy_log;
static const char *const refusal_codes[_REFUSAL_MAX] = {
	[REFUSAL_MISSING_TOKEN] = "missing_token",
	[REFUSAL_MALFORMED_TOKEN] = "malformed_token",
};

static unsigned hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % BUCKETS;
}

static bool idle(const struct rest_client *c)
{
	if (c->refs > 0)
		return false;
	for (int i = 0; i < _REFUSAL_MAX; i++)
		if (c->refused[i])
			return false;
	return true;
}

static void forget(struct rest_client *c)
{
	for (struct rest_client **pp = &buckets[hash(c->addr)]; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	n_clients--;
	free(c);
}

static struct rest_client *lookup(const char *addr)
{
	unsigned h = hash(addr);
	for (struct rest_client *c = buckets[h]; c; c = c->next)
		if (strcmp(c->addr, addr) == 0)
			return c;
	if (n_clients >= MAX_CLIENTS && strcmp(addr, OTHER) != 0)
		return lookup(OTHER);
	struct rest_client *c = xcalloc(1, sizeof(*c));
	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	c->next = buckets[h];
	buckets[h] = c;
	n_clients++;
	return c;
}

struct rest_client *client_get(const struct sockaddr_storage *ss)
{
	char addr[INET6_ADDRSTRLEN] = "unknown";
	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, addr, sizeof(addr));
	else if (ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, addr, sizeof(addr));
	struct rest_client *c = lookup(addr);
	c->refs++;
	return c;
}

struct rest_client *client_ref(struct rest_client *c)
{
	if (c)
		c->refs++;
	return c;
}

void client_put(struct rest_client *c)
{
	if (c && --c->refs == 0 && idle(c))
		forget(c);
}

const char *client_addr(const struct rest_client *c)
{
	return c ? c->addr : "unknown";
}

bool client_lasting_begin(struct rest_client *c)
{
	if (!c)
		return true;
	if (c->lasting >= REST_LASTING_PER_CLIENT) {
		log_warnx_limited(&busy_log, "refusing a request from %s: %u plans and synchronous purges already "
				  "waiting (limit %d per client)", c->addr, c->lasting, REST_LASTING_PER_CLIENT);
		return false;
	}
	c->lasting++;
	client_ref(c);
	return true;
}

void client_lasting_end(struct rest_client *c)
{
	if (!c)
		return;
	c->lasting--;
	client_put(c);
}

void client_refused(struct rest_client *c, enum refusal why)
{
	if (c)
		c->refused[why]++;
}

static bool report_reply(const json_t *msg, void *ud)
{
	static struct log_limit report_log;
	struct msg_reply rp;
	(void)ud;
	if (msg_reply_unpack(msg, &rp) && !rp.ok)
		log_warnx_limited(&report_log, "purged did not take our count of refused requests: %s",
				  rp.error_message ?: "?");
	return false;
}

/* Every REST_REFUSAL_REPORT_MS: one report per address and reason with refusals since the last. */
static void on_report(uv_timer_t *t)
{
	for (unsigned b = 0; b < BUCKETS; b++)
		for (struct rest_client *c = buckets[b], *next; c; c = next) {
			next = c->next;
			for (int i = 0; i < _REFUSAL_MAX; i++) {
				if (!c->refused[i])
					continue;
				struct proto_error err;
				json_t *args = json_pack("{s:s, s:I, s:s}", "address", c->addr, "count",
							 (json_int_t)c->refused[i], "reason", refusal_codes[i]);
				if (upstream_call(PURGE_OP_REST_REFUSALS, args, NULL, report_reply, t, &err) < 0)
					continue; /* link down: we are exiting anyway */
				c->refused[i] = 0;
			}
			if (idle(c))
				forget(c);
		}
}

void clients_init(void)
{
	uv_timer_init(rest_loop, &report_timer);
	uv_timer_start(&report_timer, on_report, REST_REFUSAL_REPORT_MS, REST_REFUSAL_REPORT_MS);
	uv_unref((uv_handle_t *)&report_timer);
}

void clients_stop(void)
{
	if (!uv_is_closing((uv_handle_t *)&report_timer))
		uv_close((uv_handle_t *)&report_timer, NULL);
}
