/* What the unit tests share. */
#pragma once
#include <check.h>
#include <stdlib.h>

/* Run @s in check's forked mode: main()'s exit status, failing when a test did. */
static inline int unit_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
