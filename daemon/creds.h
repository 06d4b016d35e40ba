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
