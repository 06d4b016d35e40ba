/*
 * Backend credentials: read from secret files that must belong to the
 * daemon's user and be unreadable by group and others (as sshd demands of its
 * host keys). Supervisor only: no other process ever opens them.
 */
#pragma once
#include <stddef.h>

#define CREDS_MAX 65536 /* a tokens file of some hundred lines fits */

/*
 * Read the secret in @path (one value; a final newline is dropped). Returns 0
 * and a malloc'ed string in *ret (wipe it with freezero_str), or a negative
 * errno with a sentence in @err saying what is wrong and what to do.
 */
int creds_load_file(const char *path, char **ret, char *err, size_t errlen);

/*
 * A directory only the daemon may change (state_dir, its subfolders, the
 * control socket's folder): not a symlink, a directory, owned by the daemon's
 * user or root, not writable by group or others. Otherwise an unprivileged
 * user could delete the journal and audit log, or plant a socket that answers
 * root's purgectl. Returns 0, or -1 with a sentence in @err naming the fix.
 */
int creds_check_private_dir(const char *path, const char *what, char *err, size_t errlen);
