/*
 * An executor binary serves one family of backends: purged-executor the
 * local ones (noop, crdb), purged-executor-http the REST ones (itop,
 * redmine). Only the latter maps libcurl and its TLS, LDAP and Kerberos
 * libraries, which cost milliseconds at every start. Executor only.
 */
#pragma once
#include "daemon/executor/backend.h"

extern const struct backend_ops *const family_backends[];
/* Before the sandbox: what the family's libraries must read while files can still be opened. */
void family_init(void);
/* After the run: report and release what the family set up for @ctx. */
void family_finish(struct backend_ctx *ctx);
