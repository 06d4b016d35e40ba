/*
 * The backend table: one row per backend type, all the supervisor (and
 * purged-rest) knows of a backend: its name, the executor binary that
 * serves it, its configuration keys with their validators (a KEY_SECRET_FILE
 * key NAME_file reaches the executor as secrets.NAME, never as a setting),
 * and how the doors may name it. Plain data: purged links neither libcurl
 * nor hiredis; the drivers live in daemon/executor/backends/.
 * Adding a backend: its driver there, its row here, its man page section,
 * its tests (HACKING.md).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>

enum key_type {
	KEY_STRING,
	KEY_PATH,        /* absolute path */
	KEY_UINT,
	KEY_SECRET_FILE, /* absolute path of a secret file; its content goes to secrets */
	KEY_BOOL,        /* yes/no, true/false, on/off, 1/0; stored as unsigned 0/1 */
	KEY_LISTEN,      /* IPv4:PORT or [IPv6]:PORT */
	KEY_URL,         /* http(s)://host[:port][/path], no credentials in it */
	KEY_SCOPE,       /* comma-separated subset of projects, users, groups */
	KEY_API_VERSION, /* iTop REST versions 1.0 to 1.4 */
	KEY_CLASSES,     /* comma-separated iTop class names */
	KEY_SIZE,        /* bytes, with an optional K, M, G or T suffix (binary: 1K = 1024); stored as uint64_t */
};

struct key_def {
	const char *name;
	enum key_type type;
	const char *def;       /* NULL: no default (see required) */
	unsigned long min, max;
	size_t offset;         /* [daemon] keys: where in struct daemon_conf */
	bool required;
};

/* Which executor binary serves a type (daemon/executor/family_*.c list the same types). */
enum backend_family {
	BACKEND_LOCAL, /* purged-executor: no HTTP client */
	BACKEND_HTTP,  /* purged-executor-http: libcurl */
};

struct backend_desc {
	const char *type;             /* type = ... in [target NAME], and the job's type */
	const char *display;          /* the product's name in messages (Lucid Chain's route) */
	enum backend_family family;
	const struct key_def *keys;   /* its keys besides the common ones (protect, approvals, archive...) */
	const char *section;          /* configured as [SECTION NAME] of its own (crdb), not [target NAME] */
	bool lucid;                   /* Lucid Chain's POST /purge/:target may name it (REST backends) */
	bool instances;               /* purged instance by instance (crdb.purge, restore), never by purge */
};

/* The row of @type, or NULL. */
const struct backend_desc *backend_find(const char *type);
/* Whether targets of @type are purged instance by instance (crdb.purge), not by purge. */
bool backend_by_instances(const char *type);
/* The type configured by [@section NAME] sections, or NULL. */
const struct backend_desc *backend_by_section(const char *section);
/* "noop, redmine, itop": the types a [target NAME] may have, for messages. */
const char *backend_target_types(void);
