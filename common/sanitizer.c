/*
 * AddressSanitizer's defaults for the sandboxed programs (purged-executor,
 * purged-rest): LeakSanitizer's exit-time check needs ptrace, which the
 * sandbox refuses. Linked as a source of those programs, not through a
 * library: the runtime's weak reference would not pull it from an archive.
 * purged and purgectl keep leak detection.
 */
#include "buildconf.h"

#if PURGED_SANITIZED
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "detect_leaks=0";
}
#else
/* ISO C wants a translation unit to declare something. */
typedef int purged_sanitizer_unused;
#endif
