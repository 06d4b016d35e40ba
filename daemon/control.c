/*
 * The purgectl socket: bind with mode 0660 and the control group, accept,
 * identify the caller with SO_PEERCRED, enforce connection limits, split
 * frames, decode, hand requests to ops.c, queue replies. Supervisor only.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "daemon/creds.h"
#include "daemon/purged.h"
#include "daemon/tokens.h"
#include "purged/log.h"
#include "purged/util.h"
#include "purged/uvio.h"

#define CTL_MAX_CONNS        128
#define CTL_MAX_CONNS_PER_UID 32
#define CTL_MAX_WRITE_QUEUE  (8u << 20) /* a watcher that stops reading is cut off */
#define REST_MAX_WRITE_QUEUE (64u << 20) /* purged-rest is slowed down first, cut off only past this */
#define CTL_FRAME_DEADLINE_MS 10000     /* a frame begun must be whole by then */

struct ctl_conn {
	uv_pipe_t pipe;
	uv_timer_t frame_timer;  /* runs while a frame is incomplete */
	int open_handles;
	struct proto_reader rd;
	struct caller who;
	TAILQ_ENTRY(ctl_conn) link;
	bool closing;
	bool rest;               /* purged-rest's link: callers are bearer tokens, per request */
	bool paused;             /* rest link: its requests are not read until it has taken our replies */
	bool close_when_idle;    /* the last reply is queued: close once it is written */
	struct outq out;
	void (*on_close)(void);  /* tells the owner of an adopted link */
	uint64_t serial;         /* never reused: tells connections apart after one is freed */
};

static uint64_t conn_serial;

uint64_t ctl_conn_serial(const struct ctl_conn *c)
{
	return c->serial;
}

static uv_pipe_t listener;
static bool listening;
static char *socket_path;
static TAILQ_HEAD(, ctl_conn) conns = TAILQ_HEAD_INITIALIZER(conns);
static unsigned n_conns;

static struct log_limit conn_limit_log, deadline_log, token_log, slow_rest_log;

static void on_conn_closed(uv_handle_t *h)
{
	struct ctl_conn *c = h->data;
	if (--c->open_handles > 0)
		return;
	proto_reader_free(&c->rd);
	free(c);
}

static void conn_close(struct ctl_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	watch_drop_conn(c);
	if (c->on_close)
		c->on_close();
	TAILQ_REMOVE(&conns, c, link);
	n_conns--;
	outq_discard(&c->out);
	uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
	uv_close((uv_handle_t *)&c->frame_timer, on_conn_closed);
}

/* A connection never listed (accept or adoption failed). */
static void conn_discard(struct ctl_conn *c)
{
	uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
	uv_close((uv_handle_t *)&c->frame_timer, on_conn_closed);
}

void ctl_close(struct ctl_conn *c)
{
	conn_close(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/*
 * A write failed, or everything queued is written and we asked to hear it:
 * a connection to end has flushed its last reply (close), or purged-rest has
 * caught up with its replies (read its requests again).
 */
static void on_out(struct outq *q, int status)
{
	struct ctl_conn *c = q->stream->data;
	if (status < 0)
		log_debug("control: writing to %s (pid %lld) failed: %s", c->who.name, (long long)c->who.pid,
			  uv_strerror(status));
	if (status == 0 && c->paused && !c->close_when_idle) {
		c->paused = false;
		uv_read_start((uv_stream_t *)&c->pipe, uvio_read_buf, on_read);
		return;
	}
	conn_close(c);
}

static void conn_init(struct ctl_conn *c)
{
	proto_reader_init(&c->rd);
	uv_pipe_init(purged->loop, &c->pipe, 0);
	uv_timer_init(purged->loop, &c->frame_timer);
	c->pipe.data = c->frame_timer.data = c;
	c->open_handles = 2;
	outq_init(&c->out, (uv_stream_t *)&c->pipe, on_out);
}

static void send_frame(struct ctl_conn *c, uint8_t *buf, size_t len, bool close_after)
{
	if (c->closing) {
		free(buf);
		return;
	}
	size_t pending = outq_pending(&c->out);
	if (c->rest && pending > CTL_MAX_WRITE_QUEUE && pending <= REST_MAX_WRITE_QUEUE && !c->paused) {
		/*
		 * Back-pressure, not a cut: purged-rest asks faster than it reads
		 * (its clients want big replies). Its requests wait in the socket
		 * until it has taken what is queued; the door stays up.
		 */
		log_warnx_limited(&slow_rest_log, "rest: purged-rest has %zu bytes of replies to read; reading its "
				  "requests again once it has", pending);
		c->paused = true;
		uv_read_stop((uv_stream_t *)&c->pipe);
		outq_notify_idle(&c->out);
	} else if (pending > (c->rest ? REST_MAX_WRITE_QUEUE : CTL_MAX_WRITE_QUEUE)) {
		log_warnx("control: %s (pid %lld) is not reading its replies; closing the connection", c->who.name,
			  (long long)c->who.pid);
		free(buf);
		conn_close(c);
		return;
	}
	/* Replies to the requests of one read leave together, in one write. */
	outq_append(&c->out, buf, len);
	free(buf);
	if (close_after) {
		c->close_when_idle = true;
		outq_notify_idle(&c->out);
	}
}

static void send_msg(struct ctl_conn *c, json_t *msg, bool close_after)
{
	uint8_t *buf;
	size_t len;
	int r;

	if (!msg) {
		/* Fail closed: a reply that cannot be built ends the connection; it never kills purged. */
		log_warnx("control: a reply to %s (pid %lld) could not be built (out of memory); closing the connection",
			  c->who.name, (long long)c->who.pid);
		conn_close(c);
		return;
	}
	if (c->closing) {
		json_decref(msg);
		return;
	}
	r = proto_encode(msg, &buf, &len);
	json_decref(msg);
	if (r < 0) {
		log_warnx("control: reply to %s could not be encoded: %s", c->who.name, strerror(-r));
		conn_close(c);
		return;
	}
	send_frame(c, buf, len, close_after);
}

void ctl_send_frame(struct ctl_conn *c, uint8_t *frame, size_t len)
{
	send_frame(c, frame, len, false);
}

void ctl_send(struct ctl_conn *c, json_t *msg)
{
	send_msg(c, msg, false);
}

/*
 * Requests through purged-rest carry the bearer token the HTTP client sent:
 * the caller is that token's name, checked here against the hashes of the
 * tokens file; purged-rest itself is trusted with nothing.
 */
static void dispatch(struct ctl_conn *c, const json_t *msg)
{
	struct caller who = c->who;
	struct msg_request rq, *req = &rq;
	const char *auth, *name;

	msg_request_unpack(msg, &rq);
	if (c->rest) {
		auth = rq.auth;
		enum purge_op op = rq.op;
		/*
		 * purged-rest's own requests, never an HTTP client's (no route maps to
		 * them): its liveness ping and its refusal counts. The link is their
		 * credential; they are not refusals.
		 */
		if (!auth && (purge_op_flags(op) & PURGE_OPF_LINK_NOAUTH)) {
			snprintf(who.name, sizeof(who.name), "purged-rest");
			snprintf(who.identity, sizeof(who.identity), "purged-rest");
			who.allowed = true;
			ops_dispatch(c, &who, req);
			return;
		}
		name = tokens_verify(purged->conf->tokens, auth);
		if (!name) {
			uint64_t id = rq.id;
			if (auth)
				log_warnx_limited(&token_log, "rest: refused %s: the bearer token matches none in %s",
						  purge_op_to_string(op), purged->conf->rest_tokens_file);
			/* Counted and written in batches: a token guesser costs one fdatasync a minute. */
			audit_refusal(&who, NULL, auth ? "invalid bearer token" : "no bearer token", 1);
			ctl_send(c, proto_reply_error(id, PURGE_ERR_UNAUTHORIZED,
						      auth ? "invalid bearer token" : "missing bearer token"));
			return;
		}
		snprintf(who.name, sizeof(who.name), "%s", name);
		snprintf(who.identity, sizeof(who.identity), "token %s", name);
		who.allowed = true;
	}
	ops_dispatch(c, &who, req);
}

static void on_frame_deadline(uv_timer_t *h)
{
	struct ctl_conn *c = h->data;
	if (c->paused) {
		/* We stopped reading, not the peer: its frame's time starts again when we read. */
		uv_timer_start(&c->frame_timer, on_frame_deadline, CTL_FRAME_DEADLINE_MS, 0);
		return;
	}
	log_warnx_limited(&deadline_log, "control: %s (pid %lld) left a frame incomplete for %d s; closing the "
			  "connection", c->who.name, (long long)c->who.pid, CTL_FRAME_DEADLINE_MS / 1000);
	send_msg(c, proto_reply_error(0, PURGE_ERR_BAD_REQUEST, "frame not completed within %d s",
				      CTL_FRAME_DEADLINE_MS / 1000), true);
}

const char *ctl_frame_error(int r, enum purge_err *code)
{
	*code = r == -EMSGSIZE ? PURGE_ERR_TOO_LARGE : PURGE_ERR_BAD_REQUEST;
	return r == -EMSGSIZE ? "frame longer than the 1 MiB limit" : "empty frame";
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct ctl_conn *c = s->data;

	if (nread < 0) {
		if (proto_reader_pending(&c->rd))
			log_warnx("control: %s (pid %lld) closed the connection inside a frame, ignoring", c->who.name,
				  (long long)c->who.pid);
		conn_close(c);
	} else if (nread > 0) {
		const uint8_t *p;
		size_t n;
		int r = proto_reader_feed(&c->rd, buf->base, (size_t)nread);
		while (r >= 0 && !c->closing && (r = proto_reader_next(&c->rd, &p, &n)) > 0) {
			enum purge_msg_type type;
			struct proto_error err;
			json_t *req;

			if (proto_decode(p, n, PURGE_MSG_MASK(PURGE_MSG_REQUEST), &type, &req, &err) < 0) {
				log_warnx("control: bad request from %s (pid %lld): %s; closing the connection",
					  c->who.name, (long long)c->who.pid, err.message);
				json_t *reply = proto_reply_error(0, err.code, "%s", err.message);
				/* A protocol 1 client (an old purgectl) reads replies without "kind": it is told why. */
				if (reply && err.peer_version == 1)
					json_object_del(reply, "kind");
				send_msg(c, reply, true);
				break;
			}
			dispatch(c, req);
			json_decref(req);
		}
		if (!c->closing) {
			/* A frame begun must be complete within the deadline: no slot held by a trickle. */
			if (!proto_reader_pending(&c->rd))
				uv_timer_stop(&c->frame_timer);
			else if (!uv_is_active((uv_handle_t *)&c->frame_timer))
				uv_timer_start(&c->frame_timer, on_frame_deadline, CTL_FRAME_DEADLINE_MS, 0);
		}
		if (r < 0 && !c->closing) {
			enum purge_err code;
			const char *why = ctl_frame_error(r, &code);
			log_warnx("control: %s from %s (pid %lld); closing the connection", why, c->who.name,
				  (long long)c->who.pid);
			send_msg(c, proto_reply_error(0, code, "%s", why), true);
		}
	}
}

static bool in_control_group(uid_t uid, gid_t gid, const char *user)
{
	if (!purged->have_control_gid)
		return false;
	if (gid == purged->control_gid)
		return true;
	if (!user)
		return false;
	int ngroups = 64;
	gid_t *groups = xcalloc((size_t)ngroups, sizeof(gid_t));
	if (getgrouplist(user, gid, groups, &ngroups) < 0) {
		groups = xrealloc(groups, (size_t)ngroups * sizeof(gid_t));
		getgrouplist(user, gid, groups, &ngroups);
	}
	bool found = false;
	for (int i = 0; i < ngroups && !found; i++)
		found = groups[i] == purged->control_gid;
	free(groups);
	(void)uid;
	return found;
}

/*
 * The login uid of process @pid, or 4294967295 (unset) when it has none or
 * cannot be read. Both files are read through one directory handle, so they
 * describe one process; and that process must still run as @uid (what
 * SO_PEERCRED saw at connect): a pid reused by another user's process is
 * not taken for the caller.
 */
unsigned long ctl_peer_login_uid(pid_t pid, uid_t uid)
{
	char path[32], buf[1024];
	unsigned long login_uid = 4294967295UL, euid = 4294967295UL;
	ssize_t n;
	int dir, fd;

	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return login_uid;
	fd = openat(dir, "status", O_RDONLY | O_CLOEXEC);
	n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n > 0) {
		buf[n] = '\0';
		const char *u = strstr(buf, "\nUid:");
		unsigned long real;
		if (!u || sscanf(u + 5, "%lu %lu", &real, &euid) != 2)
			euid = 4294967295UL;
	}
	fd = euid == (unsigned long)uid ? openat(dir, "loginuid", O_RDONLY | O_CLOEXEC) : -1;
	n = fd >= 0 ? read(fd, buf, 15) : -1;
	if (fd >= 0)
		close(fd);
	if (n > 0) {
		buf[n] = '\0';
		login_uid = strtoul(buf, NULL, 10);
	}
	close(dir);
	return login_uid;
}

static void identify(struct ctl_conn *c)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	uv_os_fd_t fd;
	struct passwd pw, *pwp = NULL;
	char buf[4096];

	c->who.door = "ctl";
	c->who.uid = c->who.gid = c->who.pid = -1;
	snprintf(c->who.name, sizeof(c->who.name), "unknown");
	snprintf(c->who.identity, sizeof(c->who.identity), "unknown");
	if (uv_fileno((uv_handle_t *)&c->pipe, &fd) < 0 || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return;
	c->who.uid = cred.uid;
	c->who.gid = cred.gid;
	c->who.pid = cred.pid;
	if (getpwuid_r(cred.uid, &pw, buf, sizeof(buf), &pwp) == 0 && pwp)
		snprintf(c->who.name, sizeof(c->who.name), "%s", pwp->pw_name);
	else
		snprintf(c->who.name, sizeof(c->who.name), "uid %u", (unsigned)cred.uid);
	/*
	 * The login uid survives su and sudo: two administrators who both became
	 * root are still two people. Unset (4294967295) outside a login session.
	 */
	unsigned long login_uid = ctl_peer_login_uid(cred.pid, cred.uid);
	snprintf(c->who.identity, sizeof(c->who.identity), "uid %lu",
		 login_uid != 4294967295UL ? login_uid : (unsigned long)cred.uid);
	c->who.allowed = ctl_peer_allowed(cred.uid, cred.gid, pwp ? pwp->pw_name : NULL);
}

/* root and the daemon's own user always; others through the control group. */
bool ctl_peer_allowed(uid_t uid, gid_t gid, const char *user)
{
	return uid == 0 || uid == geteuid() || in_control_group(uid, gid, user);
}

bool ctl_over_limits(unsigned allowed_open, unsigned same_uid_open)
{
	return allowed_open >= CTL_MAX_CONNS || same_uid_open >= CTL_MAX_CONNS_PER_UID;
}

static void on_connection(uv_stream_t *server, int status)
{
	struct ctl_conn *c, *o;
	unsigned same_uid = 0, allowed = 0;

	if (status < 0) {
		log_warnx("control: accept failed: %s, ignoring", uv_strerror(status));
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->serial = ++conn_serial;
	conn_init(c);
	if (uv_accept(server, (uv_stream_t *)&c->pipe) < 0) {
		conn_discard(c);
		return;
	}
	identify(c);
	TAILQ_FOREACH(o, &conns, link) {
		same_uid += o->who.uid == c->who.uid;
		allowed += o->who.allowed;
	}
	TAILQ_INSERT_HEAD(&conns, c, link);
	n_conns++;
	/*
	 * Pre-authentication surface (OpenSSH's principle): a caller that may not
	 * use purged gets one reply and the end of the connection; not one of its
	 * bytes is read, let alone decoded.
	 */
	if (!c->who.allowed) {
		char why[160];
		snprintf(why, sizeof(why), "not root and not in control_group '%s'", purged->conf->control_group);
		audit_refusal(&c->who, NULL, why, 1);
		send_msg(c, proto_reply_error(0, PURGE_ERR_FORBIDDEN, "%s is not allowed to use purged: ask an "
					      "administrator to add you to the group '%s'", c->who.name,
					      purged->conf->control_group), true);
		return;
	}
	/* Only allowed callers count against the limits: refused ones cannot crowd root out. */
	if (ctl_over_limits(allowed, same_uid)) {
		log_warnx_limited(&conn_limit_log, "control: too many connections (%u in all, %u from %s); refusing "
				  "pid %lld", allowed + 1, same_uid + 1, c->who.name, (long long)c->who.pid);
		send_msg(c, proto_reply_error(0, PURGE_ERR_BUSY, "too many connections to purged; close some and retry"),
			 true);
		return;
	}
	uv_read_start((uv_stream_t *)&c->pipe, uvio_read_buf, on_read);
}

void ctl_listen(const char *path, const char *group)
{
	struct group gr, *grp = NULL;
	char buf[4096];
	struct sockaddr_un sa;
	mode_t old;
	int r;

	if (strlen(path) >= sizeof(sa.sun_path))
		fatalx("control_socket '%s' is longer than %zu bytes; choose a shorter path", path,
		       sizeof(sa.sun_path) - 1);
	if (getgrnam_r(group, &gr, buf, sizeof(buf), &grp) == 0 && grp) {
		purged->have_control_gid = true;
		purged->control_gid = grp->gr_gid;
	} else {
		log_warnx("control_group '%s' does not exist: only root and uid %u may use purgectl; create the group "
			  "(groupadd --system %s) to let administrators in", group, (unsigned)geteuid(), group);
	}

	char *dir = xstrdup(path);
	dirname(dir);
	char why[512];
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		fatal("cannot create the control socket directory '%s'", dir);
	if (creds_check_private_dir(dir, "the control socket directory", why, sizeof(why)) < 0)
		fatalx("%s; fix control_socket in %s", why, purged->conf_path);
	if (access(dir, W_OK | X_OK) < 0)
		fatal("control socket directory '%s' is not writable by the daemon; fix its owner or set control_socket",
		      dir);
	free(dir);

	/* A socket file left by a dead daemon is removed; a live one means another purged runs. */
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			fatalx("control_socket '%s' exists and is not a socket; remove it or choose another path", path);
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		memset(&sa, 0, sizeof(sa));
		sa.sun_family = AF_UNIX;
		memcpy(sa.sun_path, path, strlen(path));
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			fatalx("another purged is already listening on '%s'; stop it first", path);
		if (fd >= 0)
			close(fd);
		unlink(path);
	}

	uv_pipe_init(purged->loop, &listener, 0);
	/*
	 * Bind with the control group as effective gid, so the socket is born
	 * with that group: no chown, hence no CAP_CHOWN in the service's bounding set.
	 */
	bool as_group = purged->have_control_gid && geteuid() == 0 && setegid(purged->control_gid) == 0;
	old = umask(0117); /* no window where the socket is open to others */
	r = uv_pipe_bind(&listener, path);
	umask(old);
	if (as_group && setegid(getgid()) < 0)
		fatal("cannot restore the effective gid after binding '%s'", path);
	if (r < 0)
		fatalx("cannot bind the control socket '%s': %s", path, uv_strerror(r));
	if (purged->have_control_gid && !as_group && chown(path, (uid_t)-1, purged->control_gid) < 0)
		log_warn("cannot give the control socket '%s' to group '%s' (not a member?); only root and "
			 "uid %u may connect", path, group, (unsigned)geteuid());
	if (chmod(path, 0660) < 0)
		fatal("cannot chmod the control socket '%s'", path);
	/* A deep backlog: a flood of refused callers must not fill it before root gets its turn. */
	r = uv_listen((uv_stream_t *)&listener, 1024, on_connection);
	if (r < 0)
		fatalx("cannot listen on the control socket '%s': %s", path, uv_strerror(r));
	listening = true;
	socket_path = xstrdup(path);
	log_info("control: listening on %s (mode 0660, group %s)", path,
		 purged->have_control_gid ? group : "none");
}

struct ctl_conn *ctl_adopt_rest(int fd, void (*on_close)(void))
{
	struct ctl_conn *c = xcalloc(1, sizeof(*c));
	c->serial = ++conn_serial;
	int r;

	conn_init(c);
	c->rest = true;
	c->on_close = on_close;
	c->who.door = "rest";
	c->who.uid = c->who.gid = c->who.pid = -1;
	snprintf(c->who.name, sizeof(c->who.name), "anonymous");
	r = uv_pipe_open(&c->pipe, fd);
	if (r < 0) {
		log_warnx("rest: cannot watch the link to purged-rest: %s", uv_strerror(r));
		conn_discard(c);
		return NULL;
	}
	TAILQ_INSERT_HEAD(&conns, c, link);
	n_conns++;
	uv_read_start((uv_stream_t *)&c->pipe, uvio_read_buf, on_read);
	return c;
}

void ctl_close_listener(void)
{
	if (!listening)
		return;
	listening = false;
	uv_close((uv_handle_t *)&listener, NULL);
	unlink(socket_path);
	free(socket_path);
	socket_path = NULL;
}

void ctl_close_all(void)
{
	while (!TAILQ_EMPTY(&conns))
		conn_close(TAILQ_FIRST(&conns));
}
