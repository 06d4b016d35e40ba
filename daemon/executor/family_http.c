/* purged-executor-http: the REST backends (itop, redmine), on libcurl. See family.h. Executor only. */
#include <curl/curl.h>
#include <stddef.h>
#include "daemon/executor/family.h"
#include "daemon/executor/http.h"
#include "purged/log.h"

const struct backend_ops *const family_backends[] = {
	&backend_itop,
	&backend_redmine,
	NULL,
};

void family_init(void)
{
	/* libcurl and OpenSSL read their configuration now, while files can still be opened. */
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

void family_finish(struct backend_ctx *ctx)
{
	unsigned long requests, connections;

	if (!ctx->http)
		return;
	http_client_stats(ctx->http, &requests, &connections);
	log_info("%lu HTTP request(s) over %lu connection(s) to %s", requests, connections,
		 http_client_where(ctx->http));
	ctx->http = http_client_free(ctx->http);
}
