/*
 * The backend table (backends.h): every type's row and its configuration
 * keys. Supervisor and purged-rest; data only.
 */
#include <stdio.h>
#include <string.h>
#include "daemon/backends.h"

/* noop: the demo target and the instrument of tests and benchmarks. */
static const struct key_def noop_keys[] = {
	{ "objects", KEY_UINT, "100", 0, 100000000 },
	{ "step_ms", KEY_UINT, "10", 0, 3600000 },
	{ "fail_at", KEY_UINT, "0", 0, 100000000 },
	{ "crash_at", KEY_UINT, "0", 0, 100000000 },
	{ "leave", KEY_UINT, "0", 0, 100000000 },         /* objects left behind: the post-condition's test */
	{ "reconcile_ms", KEY_UINT, "0", 0, 3600000 },    /* time a stop request's reconciliation takes */
	{ "password_file", KEY_SECRET_FILE, NULL },
	/* Sandbox proofs, refused unless purged runs with --test-probes. */
	{ "probe", KEY_BOOL, "no", 0, 1 },
	{ "probe_read", KEY_STRING, NULL },          /* colon-separated files to try to read */
	{ "probe_write", KEY_STRING, NULL },         /* colon-separated directories to try to write in */
	{ "probe_port", KEY_UINT, NULL, 1, 65535 },   /* a loopback TCP port it must not reach */
	{ "probe_allowed_port", KEY_UINT, NULL, 1, 65535 }, /* the one it may (as a backend's) */
	{ NULL },
};

/* Network settings every REST backend shares. */
#define HTTP_KEYS                                                  \
	{ "ca_file", KEY_PATH, NULL },                             \
	{ "insecure", KEY_BOOL, "no", 0, 1 },                      \
	{ "connect_timeout", KEY_UINT, "10", 1, 600 },             \
	{ "timeout", KEY_UINT, "60", 1, 3600 }

static const struct key_def redmine_keys[] = {
	{ "url", KEY_URL, NULL, .required = true },
	{ "api_key_file", KEY_SECRET_FILE, NULL, .required = true },
	{ "scope", KEY_SCOPE, "projects" },
	{ "parallel", KEY_UINT, "4", 1, 16 },
	{ "accept_request_credentials", KEY_BOOL, "no", 0, 1 },
	HTTP_KEYS,
	/* Tests only, refused unless purged runs with --test-probes: archive = yes pauses this long
	 * before recounting the exported trees (a test writes into one meanwhile). */
	{ "test_pause_ms", KEY_UINT, "0", 0, 60000 },
	{ NULL },
};

static const struct key_def itop_keys[] = {
	{ "url", KEY_URL, NULL, .required = true },  /* .../webservices/rest.php */
	{ "user", KEY_STRING, NULL, .required = true },
	{ "password_file", KEY_SECRET_FILE, NULL, .required = true },
	{ "api_version", KEY_API_VERSION, "1.3" },
	{ "classes", KEY_CLASSES, NULL },          /* the backend's documented default when absent */
	{ "chunk", KEY_UINT, "200", 1, 5000 },     /* objects per delete request */
	{ "accept_request_credentials", KEY_BOOL, "no", 0, 1 },
	HTTP_KEYS,
	{ NULL },
};

/* crdb's instances are instance.N / password_file.N keys of its [crdb GUID] section (config.c). */
static const struct key_def crdb_keys[] = { { NULL } };

static const struct backend_desc backends[] = {
	/* type      display                family         keys          section lucid  instances */
	{ "noop",    "noop",                BACKEND_LOCAL, noop_keys,    NULL,   false, false },
	{ "redmine", "Redmine",             BACKEND_HTTP,  redmine_keys, NULL,   true,  false },
	{ "itop",    "iTop",                BACKEND_HTTP,  itop_keys,    NULL,   true,  false },
	{ "crdb",    "Redis Active-Active", BACKEND_LOCAL, crdb_keys,    "crdb", false, true },
};

const struct backend_desc *backend_find(const char *type)
{
	for (size_t i = 0; type && i < sizeof(backends) / sizeof(backends[0]); i++)
		if (strcmp(backends[i].type, type) == 0)
			return &backends[i];
	return NULL;
}

bool backend_by_instances(const char *type)
{
	const struct backend_desc *b = backend_find(type);
	return b && b->instances;
}

const struct backend_desc *backend_by_section(const char *section)
{
	for (size_t i = 0; section && i < sizeof(backends) / sizeof(backends[0]); i++)
		if (backends[i].section && strcmp(backends[i].section, section) == 0)
			return &backends[i];
	return NULL;
}

const char *backend_target_types(void)
{
	static char list[256];
	if (!list[0])
		for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
			if (!backends[i].section)
				snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", list[0] ? ", " : "",
					 backends[i].type);
	return list;
}
