/* What the unit tests share. */
#pragma once
#include <check.h>
#include <stdlib.h>

/* Add a case to @s: its fixture (either may be NULL) and its tests, NULL-terminated. Returns the case,
 * for loop tests and timeouts. */
static inline TCase *unit_case(Suite *s, const char *name, SFun setup, SFun teardown, const TTest *const *tests)
{
	TCase *tc = tcase_create(name);
	if (setup || teardown)
		tcase_add_checked_fixture(tc, setup, teardown);
	for (; *tests; tests++)
		tcase_add_test(tc, *tests);
	suite_add_tcase(s, tc);
	return tc;
}

/* Run @s in check's forked mode: main()'s exit status, failing when a test did. */
static inline int unit_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
