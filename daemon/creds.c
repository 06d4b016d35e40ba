/* Secret files: ownership and mode checks, then read. Supervisor only. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "daemon/creds.h"
#include "purged/util.h"

int creds_load_file(const char *path, char **ret, char *err, size_t errlen)
{
	char *buf = xmalloc(CREDS_MAX + 2);
	struct stat st;
	size_t len = 0;
	int fd, r = 0;

	/* O_NONBLOCK: a FIFO planted as a secret must not hang a start or a reload before the S_ISREG check. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot open secret file '%s': %s", path, strerror(errno));
		free(buf);
		return r;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot stat secret file '%s': %s", path, strerror(errno));
		goto finish;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
		snprintf(err, errlen, "secret file '%s' is not a regular file", path);
		goto finish;
	}
	if (st.st_uid != geteuid()) {
		r = -EPERM;
		snprintf(err, errlen, "secret file '%s' is owned by uid %u, not by the daemon's uid %u; chown it",
			 path, (unsigned)st.st_uid, (unsigned)geteuid());
		goto finish;
	}
	if (st.st_mode & 077) {
		r = -EPERM;
		snprintf(err, errlen, "secret file '%s' has mode %04o, readable or writable by group or others; chmod 600 it",
			 path, (unsigned)(st.st_mode & 07777));
		goto finish;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, CREDS_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			snprintf(err, errlen, "cannot read secret file '%s': %s", path, strerror(errno));
			goto finish;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > CREDS_MAX) {
			r = -EFBIG;
			snprintf(err, errlen, "secret file '%s' is larger than %d bytes", path, CREDS_MAX);
			goto finish;
		}
	}
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	if (len == 0 || memchr(buf, '\0', len)) {
		r = -EINVAL;
		snprintf(err, errlen, "secret file '%s' is empty or holds a NUL byte", path);
		goto finish;
	}
	buf[len] = '\0';
	*ret = xstrdup(buf);
finish:
	explicit_bzero(buf, CREDS_MAX + 2);
	free(buf);
	close(fd);
	return r;
}

int creds_check_private_dir(const char *path, const char *what, char *err, size_t errlen)
{
	struct stat st;

	if (lstat(path, &st) < 0) {
		snprintf(err, errlen, "cannot stat %s '%s': %s", what, path, strerror(errno));
		return -1;
	}
	if (S_ISLNK(st.st_mode)) {
		snprintf(err, errlen, "%s '%s' is a symbolic link; point the setting at the real directory", what, path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s '%s' is not a directory", what, path);
		return -1;
	}
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		snprintf(err, errlen, "%s '%s' is owned by uid %u, neither root nor the daemon's uid %u; chown it",
			 what, path, (unsigned)st.st_uid, (unsigned)geteuid());
		return -1;
	}
	if (st.st_mode & 022) {
		snprintf(err, errlen, "%s '%s' has mode %04o, writable by group or others; chmod go-w it", what, path,
			 (unsigned)(st.st_mode & 07777));
		return -1;
	}
	/*
	 * Its parents too, up to /, as OpenSSH's safe_path does: whoever may
	 * rename a parent may swap the whole tree (plant a socket that answers
	 * root's purgectl). A parent writable by others is fine only when sticky
	 * and root's, like /tmp.
	 */
	char *real = realpath(path, NULL);
	if (!real) {
		snprintf(err, errlen, "cannot resolve %s '%s': %s", what, path, strerror(errno));
		return -1;
	}
	int r = 0;
	for (char *slash = strrchr(real, '/'); r == 0 && slash; slash = strrchr(real, '/')) {
		*slash = '\0';
		const char *parent = real[0] ? real : "/";
		if (stat(parent, &st) < 0) {
			snprintf(err, errlen, "cannot stat '%s', a parent of %s '%s': %s", parent, what, path, strerror(errno));
			r = -1;
		} else if (st.st_uid != geteuid() && st.st_uid != 0) {
			snprintf(err, errlen, "'%s', a parent of %s '%s', is owned by uid %u, neither root nor the daemon's "
				 "uid %u: its owner could swap the folder; move %s or chown the parent", parent, what, path,
				 (unsigned)st.st_uid, (unsigned)geteuid(), what);
			r = -1;
		} else if ((st.st_mode & 022) && !((st.st_mode & S_ISVTX) && st.st_uid == 0)) {
			snprintf(err, errlen, "'%s', a parent of %s '%s', has mode %04o, writable by group or others "
				 "without the sticky bit: they could swap the folder; chmod go-w it or move %s", parent, what,
				 path, (unsigned)(st.st_mode & 07777), what);
			r = -1;
		}
		if (!real[0])
			break;
	}
	free(real);
	return r;
}
