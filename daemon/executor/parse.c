/* The backends' response parsers; see parse.h. Executor only (and the fuzz targets). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "daemon/executor/parse.h"
#include "purged/util.h"

static json_t *load_object(const char *body, size_t len)
{
	json_t *j = body ? json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
	if (j && !json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

int redmine_parse_page(const char *body, size_t len, const char *key, struct redmine_page *page)
{
	json_t *doc = load_object(body, len), *arr, *e, *total;
	size_t i;

	if (!doc)
		return -EBADMSG;
	arr = json_object_get(doc, key);
	total = json_object_get(doc, "total_count");
	if (!json_is_array(arr) || (total && (!json_is_integer(total) || json_integer_value(total) < 0))) {
		json_decref(doc);
		return -EBADMSG;
	}
	json_array_foreach(arr, i, e) {
		json_t *id = json_object_get(e, "id");
		json_t *name = json_object_get(e, "name");
		json_t *parent = json_object_get(json_object_get(e, "parent"), "id");
		json_t *project = json_object_get(json_object_get(e, "project"), "id");
		if (!name)
			name = json_object_get(e, "login");
		if (!name)
			name = json_object_get(e, "subject");
		if (!json_is_integer(id) || json_integer_value(id) <= 0 || (name && !json_is_string(name)) ||
		    (parent && (!json_is_integer(parent) || json_integer_value(parent) <= 0)) ||
		    (project && (!json_is_integer(project) || json_integer_value(project) <= 0))) {
			json_decref(doc);
			return -EBADMSG;
		}
		page->v = xrealloc(page->v, (page->n + 1) * sizeof(*page->v));
		page->v[page->n++] = (struct redmine_item){
			.id = json_integer_value(id),
			.name = xstrdup(name ? json_string_value(name) : ""),
			.parent = parent ? json_integer_value(parent) : 0,
			.project = project ? json_integer_value(project) : 0,
			.admin = json_is_true(json_object_get(e, "admin")),
			.builtin = json_is_true(json_object_get(e, "builtin")),
		};
	}
	page->last_count = json_array_size(arr);
	page->total = total ? (long)json_integer_value(total) : (long)json_array_size(arr);
	json_decref(doc);
	return 0;
}

int redmine_parse_current_user(const char *body, size_t len, struct redmine_item *ret, bool *ret_admin_known)
{
	json_t *doc = load_object(body, len);
	json_t *user = json_object_get(doc, "user");
	json_t *id = json_object_get(user, "id"), *login = json_object_get(user, "login");
	json_t *admin = json_object_get(user, "admin");
	int r = json_is_integer(id) && json_integer_value(id) > 0 && (!login || json_is_string(login)) &&
			(!admin || json_is_boolean(admin)) ? 0 : -EBADMSG;
	if (r == 0) {
		*ret = (struct redmine_item){
			.id = json_integer_value(id),
			.name = xstrdup(login ? json_string_value(login) : ""),
			.admin = json_is_true(admin),
		};
		*ret_admin_known = admin != NULL;
	}
	json_decref(doc);
	return r;
}

int redmine_parse_total(const char *body, size_t len, long *ret_total)
{
	json_t *doc = load_object(body, len);
	json_t *t = json_object_get(doc, "total_count");
	int r = json_is_integer(t) && json_integer_value(t) >= 0 ? 0 : -EBADMSG;
	if (r == 0)
		*ret_total = (long)json_integer_value(t);
	json_decref(doc);
	return r;
}

void redmine_page_clear(struct redmine_page *page)
{
	for (size_t i = 0; i < page->n; i++)
		free(page->v[i].name);
	free(page->v);
	memset(page, 0, sizeof(*page));
}

/* "Found: 30" / "Deleted: 3 plus (for DB integrity) 2" / "SIMULATING: Deleted: 3" -> 30 / 3 / 3. */
static long message_number(const char *m)
{
	const char *colon = strstr(m, ": ");
	if (colon && strncmp(m, "SIMULATING", 10) == 0)
		colon = strstr(colon + 2, ": ");
	if (!colon || colon[2] < '0' || colon[2] > '9')
		return -1;
	return strtol(colon + 2, NULL, 10);
}

/* An object's key: a string of digits in a real iTop ("30"), an integer accepted too; > 0. -1 if not a key. */
static json_int_t itop_key(const json_t *key)
{
	const char *s = json_string_value(key);
	json_int_t v = -1;

	if (json_is_integer(key))
		v = json_integer_value(key);
	else if (s && *s && strlen(s) <= 18 && s[strspn(s, "0123456789")] == '\0')
		v = strtoll(s, NULL, 10);
	return v > 0 ? v : -1;
}

int itop_parse_reply(const char *body, size_t len, const char *field, struct itop_reply *out)
{
	json_t *doc = load_object(body, len), *code, *msg, *objs, *o;
	const char *k;

	memset(out, 0, sizeof(*out));
	if (!doc)
		return -EBADMSG;
	code = json_object_get(doc, "code");
	msg = json_object_get(doc, "message");
	objs = json_object_get(doc, "objects");
	/* "objects" is null, not {}, when empty. */
	if (!json_is_integer(code) || (msg && !json_is_string(msg)) || (objs && !json_is_object(objs) && !json_is_null(objs))) {
		json_decref(doc);
		return -EBADMSG;
	}
	out->doc = doc;
	out->code = json_integer_value(code);
	out->message = msg ? json_string_value(msg) : "";
	out->number = message_number(out->message);
	if (json_is_object(objs)) {
		out->objects = xcalloc(json_object_size(objs) + 1, sizeof(*out->objects));
		json_object_foreach(objs, k, o) {
			json_t *cls = json_object_get(o, "class"), *key = json_object_get(o, "key");
			json_t *ocode = json_object_get(o, "code"), *fields = json_object_get(o, "fields");
			json_int_t kv = itop_key(key);
			if (!json_is_string(cls) || kv < 0 || !json_is_integer(ocode) || (fields && !json_is_object(fields))) {
				itop_reply_clear(out);
				return -EBADMSG;
			}
			struct itop_object *x = &out->objects[out->n_objects++];
			x->cls = json_string_value(cls);
			x->key = kv;
			x->code = json_integer_value(ocode);
			x->name = json_string_value(json_object_get(fields, "friendlyname"));
			x->field = field ? json_string_value(json_object_get(fields, field)) : NULL;
		}
	}
	return 0;
}

void itop_reply_clear(struct itop_reply *r)
{
	json_decref(r->doc);
	free(r->objects);
	memset(r, 0, sizeof(*r));
}
