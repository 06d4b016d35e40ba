/* The tokens file: load, hash, verify in constant time. Supervisor (and purgectl for hashing). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "daemon/creds.h"
#include "daemon/tokens.h"
#include "purged/proto.h"
#include "purged/util.h"

struct token {
	char name[PURGE_NAME_MAX + 1];
	unsigned char hash[32];
};

struct tokens {
	struct token *v;
	size_t n;
};

static int unhex(const char *s, unsigned char out[32])
{
	for (int i = 0; i < 32; i++) {
		unsigned v = 0;
		for (int j = 0; j < 2; j++) {
			char c = s[2 * i + j];
			v <<= 4;
			if (c >= '0' && c <= '9')
				v |= (unsigned)(c - '0');
			else if (c >= 'a' && c <= 'f')
				v |= (unsigned)(c - 'a' + 10);
			else
				return -EINVAL;
		}
		out[i] = (unsigned char)v;
	}
	return s[64] == '\0' ? 0 : -EINVAL;
}

int tokens_load(const char *path, struct tokens **ret, char *err, size_t errlen)
{
	char *data = NULL;
	int r = creds_load_file(path, &data, err, errlen);
	if (r < 0)
		return r;
	r = tokens_parse(path, data, ret, err, errlen);
	freezero_str(data);
	return r;
}

int tokens_parse(const char *path, const char *text, struct tokens **ret, char *err, size_t errlen)
{
	struct tokens *t = xcalloc(1, sizeof(*t));
	char *data = xstrdup(text), *line, *save = NULL;
	unsigned lineno = 0;
	int r = 0;

	/* strtok_r would skip empty lines and lose the numbering: split by hand. */
	for (line = data; line; line = save) {
		save = strchr(line, '\n');
		if (save)
			*save++ = '\0';
		lineno++;
		line[strcspn(line, "\r")] = '\0';
		if (line[0] == '\0' || line[0] == '#')
			continue;
		char *colon = strchr(line, ':');
		struct token tok;
		if (!colon) {
			snprintf(err, errlen, "%s:%u: expected NAME:SHA256-HEX (make one with 'purgectl token new NAME')",
				 path, lineno);
			r = -EINVAL;
			break;
		}
		*colon = '\0';
		if (!proto_is_name(line)) {
			snprintf(err, errlen, "%s:%u: token name '%s' is not valid: use letters, digits, '.', '_' or '-'",
				 path, lineno, line);
			r = -EINVAL;
			break;
		}
		if (strlen(colon + 1) != 64 || unhex(colon + 1, tok.hash) < 0) {
			snprintf(err, errlen, "%s:%u: the hash of token '%s' is not 64 lowercase hex digits", path,
				 lineno, line);
			r = -EINVAL;
			break;
		}
		snprintf(tok.name, sizeof(tok.name), "%s", line);
		t->v = xrealloc(t->v, (t->n + 1) * sizeof(*t->v));
		t->v[t->n++] = tok;
	}
	freezero_str(data);
	if (r < 0) {
		tokens_free(t);
		return r;
	}
	if (t->n == 0) {
		snprintf(err, errlen, "%s: no tokens: add one with 'purgectl token new NAME'", path);
		tokens_free(t);
		return -ENOENT;
	}
	*ret = t;
	return 0;
}

struct tokens *tokens_free(struct tokens *t)
{
	if (!t)
		return NULL;
	if (t->v) /* a file refused before its first token: explicit_bzero(NULL, 0) is undefined */
		explicit_bzero(t->v, t->n * sizeof(*t->v));
	free(t->v);
	free(t);
	return NULL;
}

const char *tokens_verify(const struct tokens *t, const char *token)
{
	unsigned char h[32];
	const char *found = NULL;

	if (!t || !token || !*token)
		return NULL;
	sha256_raw(token, h);
	/* Compare with every entry, whatever matched, so timing tells nothing. */
	for (size_t i = 0; i < t->n; i++)
		if (memeq_const_time(h, t->v[i].hash, 32))
			found = t->v[i].name;
	explicit_bzero(h, sizeof(h));
	return found;
}

size_t tokens_count(const struct tokens *t)
{
	return t ? t->n : 0;
}
