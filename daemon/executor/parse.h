/*
 * The backends' response parsers: pure functions from bytes a backend sent
 * to checked structures, so that they can be fuzzed on their own. They never
 * trust a shape: anything unexpected is -EBADMSG. Executor only.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

/* ---------------------------------------------------------------- Redmine lists */
struct redmine_item {
	json_int_t id;        /* > 0 */
	char *name;           /* name, login for users, subject for issues */
	json_int_t parent;    /* projects: parent project id, 0 for none */
	json_int_t project;   /* issues: their project's id, 0 when not given */
	bool admin, builtin;  /* users: admin flag; groups: builtin flag */
	bool top;             /* set by the caller: a project whose parent is not listed */
};

struct redmine_page {
	struct redmine_item *v;
	size_t n;
	long total;           /* total_count of the last page parsed (or its length) */
	size_t last_count;    /* entries in the last page parsed */
};

/* Append the entries of one page ({KEY: [...], total_count}) to @page. 0 or -EBADMSG. */
int redmine_parse_page(const char *body, size_t len, const char *key, struct redmine_page *page);
/*
 * {"user": {"id": N, "login": "...", "admin": true|false}} of /users/current.json: id, name
 * (the login, allocated; clear with free) and admin in @ret; @ret_admin_known false when
 * the answer has no "admin" (it cannot tell). 0 or -EBADMSG.
 */
int redmine_parse_current_user(const char *body, size_t len, struct redmine_item *ret, bool *ret_admin_known);
/* {"total_count": N} of a counting request. */
int redmine_parse_total(const char *body, size_t len, long *ret_total);
void redmine_page_clear(struct redmine_page *page);

/* ---------------------------------------------------------------- iTop replies */
struct itop_object {
	const char *cls;      /* borrowed from the reply's document */
	json_int_t key;
	json_int_t code;      /* 0 deleted or found, 4 blocker, 5 reset... */
	const char *name;     /* friendlyname, may be NULL */
	const char *field;    /* the one output field asked for, may be NULL */
};

struct itop_reply {
	json_t *doc;
	json_int_t code;
	const char *message;  /* "" when absent */
	long number;          /* the N of "Found: N", "Deleted: N", "SIMULATING: Deleted: N"; -1 if none */
	struct itop_object *objects;
	size_t n_objects;
};

/*
 * Parse iTop's JSON answer. @field names one output field to extract per
 * object (may be NULL). 0 or -EBADMSG (not iTop's JSON).
 */
int itop_parse_reply(const char *body, size_t len, const char *field, struct itop_reply *out);
void itop_reply_clear(struct itop_reply *r);
