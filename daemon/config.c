/*
 * purged.conf parsing and validation. Supervisor only.
 *
 * inih splits the file; a reader of our own feeds it line by line so that
 * every message can name FILE:LINE, and notices section headers (inih does
 * not report a section with no keys). Entries are collected first and
 * validated afterwards against typed key tables, so key order never matters.
 */
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>
#include "daemon/backends.h"
#include "daemon/config.h"
#include "daemon/creds.h"
#include "daemon/tokens.h"
#include "buildconf.h"
#include "purged/proto.h"
#include "purged/util.h"

#define DKEY_S(n, t, d) { #n, t, d, 0, 0, offsetof(struct daemon_conf, n) }
#define DKEY_U(n, d, lo, hi) { #n, KEY_UINT, d, lo, hi, offsetof(struct daemon_conf, n) }
#define RKEY(n, t, d, lo, hi) { #n, t, d, lo, hi, offsetof(struct daemon_conf, rest_##n) }

static const struct key_def daemon_keys[] = {
	DKEY_S(control_socket, KEY_PATH, PURGED_DEFAULT_SOCKET),
	DKEY_S(control_group, KEY_STRING, "purge-admin"),
	DKEY_S(state_dir, KEY_PATH, PURGED_DEFAULT_STATE_DIR),
	DKEY_S(executor_user, KEY_STRING, "purged"),
	DKEY_U(max_executors, "4", 1, 256),
	DKEY_U(max_queue, "64", 0, 100000),
	DKEY_U(task_timeout, "3600", 1, 7 * 24 * 3600),
	DKEY_U(keep_tasks, "10000", 1, 1000000),
	DKEY_U(cancel_grace, "60", 0, 3600), /* SIGTERM (stop and reconcile) to SIGKILL: cancel, timeout */
	DKEY_S(archive_dir, KEY_PATH, NULL), /* NULL: state_dir/archives */
	DKEY_U(archive_keep_days, "30", 0, 36500),
	{ "archive_max_bytes", KEY_SIZE, "10G", 1ul << 20, 1ul << 50, offsetof(struct daemon_conf, archive_max_bytes) },
	{ NULL },
};

static const struct key_def rest_keys[] = {
	RKEY(enabled, KEY_BOOL, "no", 0, 1),
	RKEY(listen, KEY_LISTEN, "127.0.0.1:8470", 0, 0),
	RKEY(tokens_file, KEY_PATH, "/etc/purged/tokens", 0, 0),
	RKEY(allow_remote, KEY_BOOL, "no", 0, 1),
	RKEY(idle_timeout, KEY_UINT, "30", 1, 3600),
	RKEY(upstream_timeout, KEY_UINT, "30", 1, 3600),
	{ NULL },
};

/* Sections with fixed keys stored in struct daemon_conf. */
static const struct {
	const char *name;
	const struct key_def *keys;
} fixed_sections[] = {
	{ "daemon", daemon_keys },
	{ "rest", rest_keys },
};

/* Keys of every target, [crdb GUID] sections too: the supervisor's, never handed to an executor. */
static const struct key_def common_target_keys[] = {
	{ "protect", KEY_BOOL, "no", 0, 1 },
	{ "approvals", KEY_UINT, "0", 0, 1 },
	{ "approval_timeout", KEY_UINT, "3600", 1, 7 * 24 * 3600 },
	{ "archive", KEY_BOOL, "no", 0, 1 },
	{ "archive_max_bytes", KEY_SIZE, NULL, 1ul << 20, 1ul << 50 }, /* NULL: [daemon]'s */
	{ NULL },
};


struct entry {
	char *section, *key, *value;
	unsigned line;
};

struct section {
	char *name;
	unsigned line;
};

/* Several files are read as one: lines are numbered across them and mapped back for messages. */
struct source {
	const char *name;
	unsigned first_line; /* global number of its line 1 */
};

struct parse_state {
	const char *file;     /* for messages without a line */
	struct source *sources;
	size_t n_sources;
	const char *data;
	size_t len, off;
	unsigned line;
	bool indented;        /* the line being parsed starts with a blank: for inih, a continuation */
	struct entry *entries;
	size_t n_entries;
	struct section *sections;
	size_t n_sections;
	struct config_errors *errs;
	size_t errs_before;
};

/* "FILE:LINE" of a global line number (several files are read as one). */
static char *where(const struct parse_state *ps, unsigned line)
{
	const char *file = ps->file;
	unsigned local = line;
	/* Sources are in order: the last one starting at or before @line holds it. */
	for (size_t i = 0; line && i < ps->n_sources; i++)
		if (line >= ps->sources[i].first_line) {
			file = ps->sources[i].name;
			local = line - ps->sources[i].first_line + 1;
		}
	return xasprintf("%s:%u", file, local);
}

static void add_error(struct parse_state *ps, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void add_error(struct parse_state *ps, unsigned line, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ps->errs->v = xrealloc(ps->errs->v, (ps->errs->n + 1) * sizeof(char *));
	if (line) {
		char *at = where(ps, line);
		ps->errs->v[ps->errs->n++] = xasprintf("%s: %s", at, msg);
		free(at);
	} else {
		ps->errs->v[ps->errs->n++] = xasprintf("%s: %s", ps->file, msg);
	}
}

void config_errors_clear(struct config_errors *errs)
{
	for (size_t i = 0; i < errs->n; i++)
		free(errs->v[i]);
	free(errs->v);
	errs->v = NULL;
	errs->n = 0;
}

/* A [target NAME] type: a row of the backend table with its own keys (not a section of its own, as crdb). */
static const struct key_def *type_keys(const char *type)
{
	const struct backend_desc *b = backend_find(type);
	return b && !b->section ? b->keys : NULL;
}

/* inih reader: one line per call, counted; long lines are an error, not a truncation. */
static char *reader(char *str, int num, void *stream)
{
	struct parse_state *ps = stream;
	size_t n = 0, max = (size_t)num - 1;
	const char *p;

	if (ps->off >= ps->len)
		return NULL;
	p = ps->data + ps->off;
	while (ps->off + n < ps->len && p[n] != '\n')
		n++;
	ps->off += n + (ps->off + n < ps->len);
	ps->line++;
	if (memchr(p, '\0', n)) {
		add_error(ps, ps->line, "line contains a NUL byte");
		n = 0;
	} else if (n > max - 1) {
		add_error(ps, ps->line, "line longer than %zu characters", max - 1);
		n = 0;
	}
	memcpy(str, p, n);
	str[n] = '\n';
	str[n + 1] = '\0';
	ps->indented = n > 0 && (str[0] == ' ' || str[0] == '\t');

	/* Remember section headers, so that an empty section is still seen. */
	const char *s = str;
	while (*s == ' ' || *s == '\t')
		s++;
	if (*s == '[') {
		const char *e = strchr(s, ']');
		if (e) {
			ps->sections = xrealloc(ps->sections, (ps->n_sections + 1) * sizeof(*ps->sections));
			ps->sections[ps->n_sections].name = xasprintf("%.*s", (int)(e - s - 1), s + 1);
			ps->sections[ps->n_sections++].line = ps->line;
		}
	}
	return str;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse_state *ps = user;
	struct entry *last = ps->n_entries ? &ps->entries[ps->n_entries - 1] : NULL;

	/*
	 * An indented line continues the value above it (inih's multi-line values): a long
	 * list, such as iTop's classes, may go on several lines, joined by a space. One that
	 * holds '=' is more likely a key indented by mistake, which would read as part of
	 * the value: refused, saying so.
	 */
	if (ps->indented && last && strcmp(last->section, section) == 0 && strcmp(last->key, name) == 0) {
		if (value && strchr(value, '=')) {
			add_error(ps, ps->line, "this line is indented, so it continues the value of '%s' above; "
				  "if it is a key of its own, remove the blanks before it", name);
			return 1;
		}
		char *joined = xasprintf("%s %s", last->value, value ? value : "");
		free(last->value);
		last->value = joined;
		return 1;
	}
	ps->entries = xrealloc(ps->entries, (ps->n_entries + 1) * sizeof(*ps->entries));
	ps->entries[ps->n_entries++] = (struct entry){
		xstrdup(section), xstrdup(name), xstrdup(value ? value : ""), ps->line,
	};
	return 1;
}

static int parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *ret)
{
	char *end;
	unsigned long v;

	if (!*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

int listen_parse(const char *s, struct sockaddr_storage *ret, bool *ret_loopback, const char **why)
{
	struct sockaddr_storage ss = { 0 };
	char host[128];
	const char *colon, *h = s, *dummy;
	size_t hl;
	unsigned long port;
	bool v6 = *s == '[';

	if (!why)
		why = &dummy;
	/* libuv reads the address; only the brackets and the port are ours to split. */
	if (v6) {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':') {
			*why = "an IPv6 address is written [ADDRESS]:PORT";
			return -EINVAL;
		}
		h = s + 1;
		hl = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon) {
			*why = "the port is missing";
			return -EINVAL;
		}
		hl = (size_t)(colon - s);
	}
	if (hl == 0 || hl >= sizeof(host)) {
		*why = hl ? "the address is too long" : "the address is missing";
		return -EINVAL;
	}
	if (parse_uint(colon + 1, 1, 65535, &port) < 0) {
		*why = "the port is not a number from 1 to 65535";
		return -EINVAL;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	if (v6 ? uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)&ss)
	       : uv_ip4_addr(host, (int)port, (struct sockaddr_in *)&ss)) {
		*why = v6 ? "the address is not an IPv6 address" : "the address is not an IPv4 address (a name is not "
								    "resolved; IPv6 goes in brackets)";
		return -EINVAL;
	}
	if (ret_loopback)
		*ret_loopback = v6 ? IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&ss)->sin6_addr)
				   : (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
	if (ret)
		*ret = ss;
	return 0;
}


/* Check one value against its definition; on success store it through @store. */
static int check_value(struct parse_state *ps, unsigned line, const struct key_def *k, const char *value,
		       unsigned long *ret_uint)
{
	unsigned long u;
	const char *why;

	switch (k->type) {
	case KEY_UINT:
		if (parse_uint(value, k->min, k->max, &u) < 0) {
			add_error(ps, line, "%s = '%s': expected a whole number from %lu to %lu", k->name, value,
				  k->min, k->max);
			return -EINVAL;
		}
		*ret_uint = u;
		return 0;
	case KEY_PATH:
	case KEY_SECRET_FILE:
		if (value[0] != '/') {
			add_error(ps, line, "%s = '%s': expected an absolute path", k->name, value);
			return -EINVAL;
		}
		if (strlen(value) >= PATH_MAX) {
			add_error(ps, line, "%s: path too long", k->name);
			return -EINVAL;
		}
		return 0;
	case KEY_BOOL:
		if (!strcmp(value, "yes") || !strcmp(value, "true") || !strcmp(value, "on") || !strcmp(value, "1")) {
			*ret_uint = 1;
			return 0;
		}
		if (!strcmp(value, "no") || !strcmp(value, "false") || !strcmp(value, "off") || !strcmp(value, "0")) {
			*ret_uint = 0;
			return 0;
		}
		add_error(ps, line, "%s = '%s': expected yes or no", k->name, value);
		return -EINVAL;
	case KEY_LISTEN:
		if (listen_parse(value, NULL, NULL, &why) < 0) {
			add_error(ps, line, "%s = '%s': %s; expected ADDRESS:PORT, e.g. 127.0.0.1:8470 or [::1]:8470",
				  k->name, value, why);
			return -EINVAL;
		}
		return 0;
	case KEY_URL:
		if (strncmp(value, "http://", 7) != 0 && strncmp(value, "https://", 8) != 0) {
			add_error(ps, line, "%s = '%s': expected an http:// or https:// URL", k->name, value);
			return -EINVAL;
		}
		if (strchr(value, '@')) {
			add_error(ps, line, "%s: credentials do not belong in the URL; put them in a secret file", k->name);
			return -EINVAL;
		}
		return 0;
	case KEY_SCOPE: {
		char buf[128];
		snprintf(buf, sizeof(buf), "%s", value);
		bool any = false;
		for (char *save = NULL, *w = strtok_r(buf, ", ", &save); w; w = strtok_r(NULL, ", ", &save)) {
			if (strcmp(w, "projects") && strcmp(w, "users") && strcmp(w, "groups")) {
				add_error(ps, line, "%s: '%s' is not one of projects, users, groups", k->name, w);
				return -EINVAL;
			}
			any = true;
		}
		if (!any) {
			add_error(ps, line, "%s: empty; use projects, users and/or groups", k->name);
			return -EINVAL;
		}
		return 0;
	}
	case KEY_API_VERSION:
		if (strlen(value) != 3 || value[0] != '1' || value[1] != '.' || value[2] < '0' || value[2] > '4') {
			add_error(ps, line, "%s = '%s': iTop's REST versions are 1.0 to 1.4", k->name, value);
			return -EINVAL;
		}
		return 0;
	case KEY_CLASSES:
		for (const char *c = value; *c; c++)
			if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
			      *c == '_' || *c == ',' || *c == ' ')) {
				add_error(ps, line, "%s: '%s' is not a comma-separated list of iTop class names", k->name,
					  value);
				return -EINVAL;
			}
		return 0;
	case KEY_SIZE: {
		char *end;
		unsigned shift = 0;
		if (value[0] < '0' || value[0] > '9') {
			add_error(ps, line, "%s = '%s': expected a size in bytes, e.g. 500M or 10G", k->name, value);
			return -EINVAL;
		}
		errno = 0;
		u = strtoul(value, &end, 10);
		switch (*end) {
		case 'K': shift = 10; end++; break;
		case 'M': shift = 20; end++; break;
		case 'G': shift = 30; end++; break;
		case 'T': shift = 40; end++; break;
		}
		if (shift && strcmp(end, "iB") == 0)
			end += 2;
		if (errno || *end) {
			add_error(ps, line, "%s = '%s': expected a size in bytes with an optional K, M, G or T suffix "
				  "(e.g. 500M or 10G)", k->name, value);
			return -EINVAL;
		}
		if ((u << shift) >> shift != u || (u << shift) < k->min || (u << shift) > k->max) {
			add_error(ps, line, "%s = '%s': expected a size from 1M to 1024T", k->name, value);
			return -EINVAL;
		}
		*ret_uint = u << shift;
		return 0;
	}
	case KEY_STRING:
		if (!value[0]) {
			add_error(ps, line, "%s: empty value", k->name);
			return -EINVAL;
		}
		return 0;
	}
	return -EINVAL;
}

static const struct key_def *find_key(const struct key_def *keys, const char *name)
{
	for (; keys && keys->name; keys++)
		if (strcmp(keys->name, name) == 0)
			return keys;
	return NULL;
}

/* The entry for @key in @section, refusing duplicates (reported once, by the caller's walk). */
static const struct entry *lookup(struct parse_state *ps, const char *section, const char *key)
{
	const struct entry *found = NULL;
	for (size_t i = 0; i < ps->n_entries; i++)
		if (strcmp(ps->entries[i].section, section) == 0 && strcmp(ps->entries[i].key, key) == 0)
			found = found ? found : &ps->entries[i];
	return found;
}

static int check_value(struct parse_state *ps, unsigned line, const struct key_def *k, const char *value,
		       unsigned long *ret_uint);

/* protect, approvals, approval_timeout of section @s into @t. */
static void build_common(struct parse_state *ps, struct target_conf *t, const struct section *s)
{
	for (const struct key_def *k = common_target_keys; k->name; k++) {
		const struct entry *e = lookup(ps, s->name, k->name);
		unsigned long u = 0;
		if ((!e && !k->def) || check_value(ps, e ? e->line : s->line, k, e ? e->value : k->def, &u) < 0)
			continue;
		if (strcmp(k->name, "protect") == 0) {
			t->protect = u;
			if (u)
				t->protect_where = where(ps, e->line);
		} else if (strcmp(k->name, "approvals") == 0) {
			t->approvals = (unsigned)u;
		} else if (strcmp(k->name, "approval_timeout") == 0) {
			t->approval_timeout = (unsigned)u;
		} else if (strcmp(k->name, "archive") == 0) {
			t->archive = u;
		} else {
			t->archive_max_bytes = u; /* 0 (absent): [daemon]'s, filled in once every section is read */
		}
	}
}

static bool stored_as_uint(enum key_type t)
{
	return t == KEY_UINT || t == KEY_BOOL;
}

static void build_fixed(struct parse_state *ps, struct daemon_conf *c, const char *section, const struct key_def *keys)
{
	for (const struct key_def *k = keys; k->name; k++) {
		const struct entry *e = lookup(ps, section, k->name);
		const char *v = e ? e->value : k->def;
		unsigned long u = 0;

		if (!v || check_value(ps, e ? e->line : 0, k, v, &u) < 0)
			continue;
		if (k->type == KEY_SIZE)
			*(uint64_t *)((char *)c + k->offset) = u;
		else if (stored_as_uint(k->type))
			*(unsigned *)((char *)c + k->offset) = (unsigned)u;
		else
			*(char **)((char *)c + k->offset) = xstrdup(v);
	}
	/* Make the struct safe to use even when a value above was refused. */
	for (const struct key_def *k = keys; k->name; k++)
		if (!stored_as_uint(k->type) && k->type != KEY_SIZE && k->def && !*(char **)((char *)c + k->offset))
			*(char **)((char *)c + k->offset) = xstrdup(k->def);
}

/* [rest] needs more than its keys: a loopback address unless allowed, and a valid tokens file. */
static void check_rest(struct parse_state *ps, struct daemon_conf *c)
{
	const struct entry *listen = lookup(ps, "rest", "listen");
	/* A default that fails (the tokens file) is pinned on "enabled = yes", which asked for it. */
	const struct entry *enabled = lookup(ps, "rest", "enabled");
	unsigned fallback = enabled ? enabled->line : 0;
	bool loopback = false;
	char err[512];

	if (!c->rest_enabled)
		return;
	if (listen_parse(c->rest_listen, NULL, &loopback, NULL) == 0 && !loopback && !c->rest_allow_remote)
		add_error(ps, listen ? listen->line : fallback,
			  "listen = '%s' is not a loopback address: purged-rest serves loopback only unless "
			  "allow_remote = yes", c->rest_listen);
	if (tokens_load(c->rest_tokens_file, &c->tokens, err, sizeof(err)) < 0) {
		const struct entry *tf = lookup(ps, "rest", "tokens_file");
		add_error(ps, tf ? tf->line : fallback, "%s", err);
	}
}

/* The endpoint a REST body may name (Lucid Chain's server, port, api_path), from the target's URL. */
static void set_endpoint(json_t *ep, const char *url)
{
	bool https = strncmp(url, "https://", 8) == 0;
	const char *h = url + (https ? 8 : 7), *end = h + strcspn(h, "/?#");
	const char *colon = NULL;
	char host[256];

	if (*h == '[') {
		const char *close = memchr(h, ']', (size_t)(end - h));
		if (close && close + 1 < end && close[1] == ':')
			colon = close + 1;
	} else {
		colon = memchr(h, ':', (size_t)(end - h));
	}
	size_t hl = (size_t)((colon ? colon : end) - h);
	snprintf(host, sizeof(host), "%.*s", (int)hl, h);
	json_object_set_new(ep, "server", json_string(host));
	json_object_set_new(ep, "port", json_integer(colon ? atoi(colon + 1) : https ? 443 : 80));
	json_object_set_new(ep, "api_path", json_string(*end == '/' ? end : "/"));
}

static void build_target(struct parse_state *ps, struct daemon_conf *c, const struct section *s, const char *name)
{
	const struct entry *te = lookup(ps, s->name, "type");
	const struct key_def *keys;
	struct target_conf *t;

	if (!proto_is_name(name)) {
		add_error(ps, s->line, "target name '%s' is not valid: use 1 to 64 letters, digits, '.', '_' or '-'", name);
		return;
	}
	if (config_find_target(c, name)) {
		add_error(ps, s->line, "target '%s' is defined twice", name);
		return;
	}
	if (!te) {
		add_error(ps, s->line, "target '%s' has no 'type' (one of: %s)", name, backend_target_types());
		return;
	}
	keys = type_keys(te->value);
	if (!keys) {
		add_error(ps, te->line, "type = '%s': unknown target type (known: %s)", te->value, backend_target_types());
		return;
	}

	c->targets = xrealloc(c->targets, (c->n_targets + 1) * sizeof(*c->targets));
	t = &c->targets[c->n_targets++];
	*t = (struct target_conf){ xstrdup(name), xstrdup(te->value), json_object(), json_object(), json_object(),
				   s->line };
	build_common(ps, t, s);

	for (size_t i = 0; i < ps->n_entries; i++) {
		const struct entry *e = &ps->entries[i];
		if (strcmp(e->section, s->name) != 0 || strcmp(e->key, "type") == 0 ||
		    find_key(common_target_keys, e->key))
			continue;
		if (!find_key(keys, e->key))
			add_error(ps, e->line, "unknown key '%s' for a target of type %s", e->key, t->type);
	}
	for (const struct key_def *k = keys; k->name; k++) {
		const struct entry *e = lookup(ps, s->name, k->name);
		const char *v = e ? e->value : k->def;
		unsigned long u = 0;

		if (!v && k->required) {
			add_error(ps, s->line, "target '%s' (type %s) needs '%s'", name, t->type, k->name);
			continue;
		}
		if (!v || check_value(ps, e ? e->line : s->line, k, v, &u) < 0)
			continue;
		if (k->type == KEY_URL)
			set_endpoint(t->endpoint, v);
		if (k->type == KEY_BOOL) {
			json_object_set_new(t->settings, k->name, json_boolean(u));
		} else if (k->type == KEY_UINT) {
			json_object_set_new(t->settings, k->name, json_integer((json_int_t)u));
		} else if (k->type == KEY_SECRET_FILE) {
			char err[512], *secret = NULL, skey[PURGE_NAME_MAX + 1];
			if (creds_load_file(v, &secret, err, sizeof(err)) < 0) {
				add_error(ps, e->line, "%s", err);
				continue;
			}
			/* password_file -> secrets.password, api_key_file -> secrets.api_key */
			snprintf(skey, sizeof(skey), "%.*s", (int)(strlen(k->name) - strlen("_file")), k->name);
			json_object_set_new(t->secrets, skey, json_string(secret));
			freezero_str(secret);
		} else {
			json_object_set_new(t->settings, k->name, json_string(v));
		}
	}
}

/*
 * "redis://ADDRESS:PORT[/DB]" or "unix:/PATH[?db=N]" into {host, port, db}
 * or {socket, db}. Addresses are IP literals or localhost: the executor
 * resolves no names inside its sandbox.
 */
static json_t *parse_redis_url(const char *url)
{
	unsigned long port, db = 0;
	char host[64];

	if (strncmp(url, "unix:/", 6) == 0) {
		const char *path = url + 5, *q = strstr(path, "?db=");
		size_t n = q ? (size_t)(q - path) : strlen(path);
		char sock[108];
		if (n == 0 || n >= sizeof(sock) || (q && parse_uint(q + 4, 0, 15, &db) < 0))
			return NULL;
		memcpy(sock, path, n);
		sock[n] = '\0';
		return json_pack("{s:s, s:I}", "socket", sock, "db", (json_int_t)db);
	}
	if (strncmp(url, "redis://", 8) != 0)
		return NULL;
	const char *hp = url + 8, *slash = strchr(hp, '/');
	size_t n = slash ? (size_t)(slash - hp) : strlen(hp);
	char buf[128];
	struct sockaddr_storage ss;
	if (n == 0 || n >= sizeof(buf))
		return NULL;
	memcpy(buf, hp, n);
	buf[n] = '\0';
	if (strncmp(buf, "localhost:", 10) == 0) {
		char tmp[128];
		snprintf(tmp, sizeof(tmp), "127.0.0.1:%s", buf + 10);
		snprintf(buf, sizeof(buf), "%s", tmp);
	}
	if (listen_parse(buf, &ss, NULL, NULL) < 0)
		return NULL;
	if (slash && slash[1] && parse_uint(slash + 1, 0, 15, &db) < 0)
		return NULL;
	if (ss.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
	else
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof(host));
	port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					      : ((struct sockaddr_in6 *)&ss)->sin6_port);
	return json_pack("{s:s, s:I, s:I}", "host", host, "port", (json_int_t)port, "db", (json_int_t)db);
}

/* [crdb GUID]: the Redis instances of one Active-Active database on this host. */
static void build_crdb(struct parse_state *ps, struct daemon_conf *c, const struct section *s,
		       const struct backend_desc *own, const char *guid)
{
	struct target_conf *t;
	json_t *instances;

	if (!proto_is_name(guid)) {
		add_error(ps, s->line, "crdb guid '%s' is not valid: expected a GUID such as "
			  "1d7741cc-1110-4e2f-bc6c-935292783d24", guid);
		return;
	}
	if (config_find_target(c, guid)) {
		add_error(ps, s->line, "'%s' is defined twice", guid);
		return;
	}
	c->targets = xrealloc(c->targets, (c->n_targets + 1) * sizeof(*c->targets));
	t = &c->targets[c->n_targets++];
	*t = (struct target_conf){ xstrdup(guid), xstrdup(own->type), json_object(), json_object(), json_object(),
				   s->line };
	instances = json_object();
	json_object_set_new(t->settings, "instances", instances);
	build_common(ps, t, s);

	for (size_t i = 0; i < ps->n_entries; i++) {
		const struct entry *e = &ps->entries[i];
		const char *dot = strchr(e->key, '.');
		unsigned long id;
		char idkey[16];

		if (strcmp(e->section, s->name) != 0 || find_key(common_target_keys, e->key))
			continue;
		if (!dot || parse_uint(dot + 1, 1, 65535, &id) < 0 ||
		    (strncmp(e->key, "instance.", 9) != 0 && strncmp(e->key, "password_file.", 14) != 0)) {
			add_error(ps, e->line, "unknown key '%s' in [crdb %s] (known: instance.N, password_file.N, "
				  "protect, approvals, approval_timeout, archive, archive_max_bytes)",
				  e->key, guid);
			continue;
		}
		snprintf(idkey, sizeof(idkey), "%lu", id);
		if (strncmp(e->key, "instance.", 9) == 0) {
			json_t *inst = parse_redis_url(e->value);
			if (!inst) {
				add_error(ps, e->line, "%s = '%s': expected redis://ADDRESS:PORT[/DB] (an IP address or "
					  "localhost) or unix:/PATH[?db=N]", e->key, e->value);
				continue;
			}
			json_object_set_new(instances, idkey, inst);
		} else {
			char err[512], *secret = NULL, skey[32];
			if (e->value[0] != '/') {
				add_error(ps, e->line, "%s = '%s': expected an absolute path", e->key, e->value);
				continue;
			}
			if (creds_load_file(e->value, &secret, err, sizeof(err)) < 0) {
				add_error(ps, e->line, "%s", err);
				continue;
			}
			snprintf(skey, sizeof(skey), "password.%s", idkey);
			json_object_set_new(t->secrets, skey, json_string(secret));
			freezero_str(secret);
		}
	}
	/* A password for an instance that is not there is a typo worth reporting. */
	const char *k;
	json_t *v;
	json_object_foreach(t->secrets, k, v)
		if (!json_object_get(instances, k + strlen("password.")))
			add_error(ps, s->line, "[crdb %s] has password_file.%s but no instance.%s", guid,
				  k + strlen("password."), k + strlen("password."));
	if (json_object_size(instances) == 0)
		add_error(ps, s->line, "[crdb %s] lists no instance (instance.N = redis://127.0.0.1:PORT)", guid);
}

static void check_entries(struct parse_state *ps)
{
	for (size_t i = 0; i < ps->n_entries; i++) {
		const struct entry *e = &ps->entries[i];
		if (!e->section[0]) {
			add_error(ps, e->line, "key '%s' is outside any section: put it under [daemon], [rest], "
				  "[target NAME] or [crdb GUID]", e->key);
			continue;
		}
		if (lookup(ps, e->section, e->key) != e)
			add_error(ps, e->line, "key '%s' repeats one set earlier in [%s]", e->key, e->section);
		for (size_t f = 0; f < sizeof(fixed_sections) / sizeof(fixed_sections[0]); f++)
			if (strcmp(e->section, fixed_sections[f].name) == 0 && !find_key(fixed_sections[f].keys, e->key))
				add_error(ps, e->line, "unknown key '%s' in [%s]", e->key, e->section);
	}
}

int config_parse(const char *name, const char *data, size_t len, struct daemon_conf **ret,
		 struct config_errors *errs)
{
	struct config_text t = { name, data, len };
	return config_parse_texts(&t, 1, ret, errs);
}

int config_parse_texts(const struct config_text *texts, size_t n, struct daemon_conf **ret,
		       struct config_errors *errs)
{
	struct parse_state ps = { .file = texts[0].name, .errs = errs, .errs_before = errs->n };
	struct daemon_conf *c = xcalloc(1, sizeof(*c));
	int r;

	c->path = xstrdup(texts[0].name);
	ps.sources = xcalloc(n, sizeof(*ps.sources));
	for (size_t i = 0; i < n; i++) {
		unsigned before = ps.line;
		ps.sources[ps.n_sources++] = (struct source){ texts[i].name, ps.line + 1 };
		ps.data = texts[i].data;
		ps.len = texts[i].len;
		ps.off = 0;
		r = ini_parse_stream(reader, &ps, handler, &ps);
		if (r > 0)
			add_error(&ps, before + (unsigned)r, "syntax error: expected '[section]' or 'key = value'");
		else if (r < 0)
			add_error(&ps, 0, "out of memory parsing the file");
	}

	check_entries(&ps);
	for (size_t i = 0; i < sizeof(fixed_sections) / sizeof(fixed_sections[0]); i++)
		build_fixed(&ps, c, fixed_sections[i].name, fixed_sections[i].keys);
	check_rest(&ps, c);
	if (!c->archive_dir && c->state_dir)
		c->archive_dir = xasprintf("%s/archives", c->state_dir);
	for (size_t i = 0; i < ps.n_sections; i++) {
		const struct section *s = &ps.sections[i];
		if (strcmp(s->name, "daemon") == 0 || strcmp(s->name, "rest") == 0)
			continue;
		if (strncmp(s->name, "target ", 7) == 0) {
			const char *tname = s->name + 7;
			while (*tname == ' ')
				tname++;
			build_target(&ps, c, s, tname);
			continue;
		}
		/* [SECTION NAME] of a backend configured by sections of its own (the table's crdb). */
		const char *sp = strchr(s->name, ' ');
		char word[PURGE_NAME_MAX + 1];
		snprintf(word, sizeof(word), "%.*s", sp ? (int)(sp - s->name) : 0, s->name);
		const struct backend_desc *own = sp ? backend_by_section(word) : NULL;
		if (own) {
			const char *guid = sp;
			while (*guid == ' ')
				guid++;
			build_crdb(&ps, c, s, own, guid);
			continue;
		}
		add_error(&ps, s->line, "unknown section [%s] (known: [daemon], [rest], [target NAME], [crdb GUID])",
			  s->name);
	}
	for (size_t i = 0; i < c->n_targets; i++)
		if (!c->targets[i].archive_max_bytes)
			c->targets[i].archive_max_bytes = c->archive_max_bytes;

	for (size_t i = 0; i < ps.n_entries; i++) {
		free(ps.entries[i].section);
		free(ps.entries[i].key);
		freezero_str(ps.entries[i].value);
	}
	free(ps.entries);
	for (size_t i = 0; i < ps.n_sections; i++)
		free(ps.sections[i].name);
	free(ps.sections);
	free(ps.sources);

	if (errs->n > ps.errs_before) {
		config_free(c);
		return -EINVAL;
	}
	*ret = c;
	return 0;
}

/* Read a whole file (configuration files are small, and a bound keeps them so). */
static int read_text(const char *path, struct config_text *t, struct config_errors *errs)
{
	struct parse_state ps = { .file = path, .errs = errs };
	/* O_NONBLOCK and a regular-file check: a FIFO in a drop-in folder must not hang a start or reload. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	struct stat st;
	FILE *f = NULL;
	char *data;
	int r;

	if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
		add_error(&ps, 0, "the configuration is not a regular file; replace it with one");
		close(fd);
		return -EINVAL;
	}
	/* Whoever can write it decides who may purge (control_group) and what: root's or ours only. */
	if (fd >= 0 && ((st.st_uid != 0 && st.st_uid != geteuid()) || (st.st_mode & 022))) {
		add_error(&ps, 0, "the configuration is owned by uid %u with mode %04o: it must belong to root (or the "
			  "daemon's uid %u) and not be writable by group or others; chown root and chmod go-w it",
			  (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777), (unsigned)geteuid());
		close(fd);
		return -EPERM;
	}
	if (fd >= 0)
		f = fdopen(fd, "r");
	if (!f) {
		r = -errno;
		add_error(&ps, 0, "cannot open the configuration: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return r;
	}
	data = xmalloc(1 << 20);
	t->len = fread(data, 1, 1 << 20, f);
	if (ferror(f) || !feof(f)) {
		add_error(&ps, 0, ferror(f) ? "cannot read the configuration" : "configuration larger than 1 MiB");
		fclose(f);
		free(data);
		return -EIO;
	}
	fclose(f);
	t->name = xstrdup(path);
	t->data = data;
	return 0;
}

static int conf_filter(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	return d->d_name[0] != '.' && n > 5 && strcmp(d->d_name + n - 5, ".conf") == 0;
}

int config_load(const char *path, struct daemon_conf **ret, struct config_errors *errs)
{
	struct config_text *texts = xcalloc(1, sizeof(*texts));
	struct dirent **list = NULL;
	size_t n = 0;
	int r, count;

	r = read_text(path, &texts[n], errs);
	if (r < 0) {
		free(texts);
		return r;
	}
	n++;
	/* Drop-ins: files named "*.conf" in PATH.d, in name order, after the main file (as systemd and sshd do). */
	char *dir = xasprintf("%s.d", path);
	struct stat dst;
	char why[512];
	if (lstat(dir, &dst) == 0 && creds_check_private_dir(dir, "the drop-in folder", why, sizeof(why)) < 0) {
		/* Anyone who can add a file there configures purged. */
		struct parse_state ps = { .file = dir, .errs = errs };
		add_error(&ps, 0, "%s", why);
		r = -EPERM;
		count = 0;
	} else {
		count = scandir(dir, &list, conf_filter, alphasort);
	}
	for (int i = 0; i < count; i++) {
		char *p = xasprintf("%s/%s", dir, list[i]->d_name);
		texts = xrealloc(texts, (n + 1) * sizeof(*texts));
		if (read_text(p, &texts[n], errs) == 0)
			n++;
		else
			r = -EIO;
		free(p);
		free(list[i]);
	}
	free(list);
	free(dir);
	if (r == 0)
		r = config_parse_texts(texts, n, ret, errs);
	for (size_t i = 0; i < n; i++) {
		free((char *)texts[i].name);
		free((char *)texts[i].data);
	}
	free(texts);
	return r;
}

struct daemon_conf *config_free(struct daemon_conf *c)
{
	if (!c)
		return NULL;
	for (size_t i = 0; i < c->n_targets; i++) {
		free(c->targets[i].name);
		free(c->targets[i].type);
		free(c->targets[i].protect_where);
		json_decref(c->targets[i].settings);
		json_decref(c->targets[i].endpoint);
		json_wipe_strings(c->targets[i].secrets);
		json_decref(c->targets[i].secrets);
	}
	free(c->targets);
	free(c->path);
	free(c->control_socket);
	free(c->control_group);
	free(c->state_dir);
	free(c->archive_dir);
	free(c->executor_user);
	free(c->rest_listen);
	free(c->rest_tokens_file);
	tokens_free(c->tokens);
	free(c);
	return NULL;
}

const struct target_conf *config_find_target(const struct daemon_conf *c, const char *name)
{
	for (size_t i = 0; c && name && i < c->n_targets; i++)
		if (strcmp(c->targets[i].name, name) == 0)
			return &c->targets[i];
	return NULL;
}
