/* purgectl's side of the control socket: connect, send, receive. purgectl only. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "ctl/purgectl.h"
#include "purged/messages.h"
#include "purged/exitcodes.h"
#include "purged/util.h"

int client_connect(struct client *c, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	memset(c, 0, sizeof(*c));
	c->path = path;
	c->next_id = 1;
	proto_reader_init(&c->rd);
	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "purgectl: socket path '%s' is too long\n", path);
		return EXIT_PURGECTL_USAGE;
	}
	memcpy(sa.sun_path, path, strlen(path));
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		fprintf(stderr, "purgectl: cannot create a socket: %s\n", strerror(errno));
		return EXIT_PURGECTL_FAILURE;
	}
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(c->fd);
		c->fd = -1;
		if (e == EACCES || e == EPERM) {
			fprintf(stderr, "purgectl: permission denied on %s: run as root or as a member of the "
				"control group (purge-admin)\n", path);
			return EXIT_PURGECTL_FORBIDDEN;
		}
		fprintf(stderr, "purgectl: cannot connect to purged at %s: %s; is purged running? "
			"(systemctl status purged, or -s/PURGED_SOCKET for another socket)\n", path, strerror(e));
		return EXIT_PURGECTL_UNREACHABLE;
	}
	return 0;
}

void client_close(struct client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	proto_reader_free(&c->rd);
}

uint64_t client_send(struct client *c, enum purge_op op, json_t *args)
{
	uint64_t id = c->next_id++;
	json_t *req = proto_request_new(id, op, args);
	int r = req ? frame_send(c->fd, req) : -ENOMEM;
	json_decref(req);
	if (r < 0) {
		/* purged refuses some callers before reading a byte: its one reply says why. */
		json_t *msg;
		enum purge_msg_type type;
		struct proto_error err;
		if ((r == -EPIPE || r == -ECONNRESET) &&
		    frame_recv(c->fd, &c->rd, PURGE_MSG_MASK(PURGE_MSG_REPLY), &type, &msg, &err) == 0) {
			struct msg_reply rp;
			if (msg_reply_unpack(msg, &rp) && !rp.ok)
				c->refused = print_error(rp.error);
			json_decref(msg);
			if (c->refused)
				return 0;
		}
		fprintf(stderr, "purgectl: sending '%s' to purged failed: %s\n", purge_op_to_string(op), strerror(-r));
		return 0;
	}
	return id;
}

int client_recv(struct client *c, json_t **ret_msg)
{
	enum purge_msg_type type;
	struct proto_error err;
	int r = frame_recv(c->fd, &c->rd, PURGE_MSG_MASK(PURGE_MSG_REPLY) | PURGE_MSG_MASK(PURGE_MSG_EVENT), &type,
			   ret_msg, &err);
	if (r == -EPIPE || r == -ECONNRESET) {
		fprintf(stderr, "purgectl: purged closed the connection (stopped or restarted?)\n");
		return EXIT_PURGECTL_UNREACHABLE;
	}
	if (r == -EBADMSG || r == -E2BIG || r == -EMSGSIZE) {
		fprintf(stderr, "purgectl: bad message from purged: %s\n", err.message);
		return EXIT_PURGECTL_FAILURE;
	}
	if (r < 0) {
		fprintf(stderr, "purgectl: reading from purged failed: %s\n", strerror(-r));
		return EXIT_PURGECTL_UNREACHABLE;
	}
	return 0;
}

int client_call(struct client *c, enum purge_op op, json_t *args, json_t **ret_result)
{
	uint64_t id = client_send(c, op, args);
	json_t *msg;
	int r;

	if (!id)
		return c->refused ? c->refused : EXIT_PURGECTL_UNREACHABLE;
	for (;;) {
		r = client_recv(c, &msg);
		if (r)
			return r;
		/* id 0: the daemon refused the frame itself before reading its id. */
		struct msg_reply rp;
		if (msg_reply_unpack(msg, &rp) && (rp.id == id || rp.id == 0)) {
			if (!rp.ok)
				r = print_error(rp.error);
			else
				*ret_result = json_incref(rp.result);
			json_decref(msg);
			return r;
		}
		json_decref(msg);
	}
}
