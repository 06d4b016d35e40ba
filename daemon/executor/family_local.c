/* purged-executor: the local backends (noop, crdb). See family.h. Executor only. */
#include <stddef.h>
#include "daemon/executor/family.h"

const struct backend_ops *const family_backends[] = {
	&backend_noop,
	&backend_crdb,
	NULL,
};

void family_init(void)
{
}

void family_finish(struct backend_ctx *ctx)
{
	(void)ctx;
}
