/*
 * purgectl's exit statuses, documented in purgectl --help and purgectl(8).
 * Scripts depend on them: never renumber.
 */
#pragma once

#define EXIT_PURGECTL_OK           0
#define EXIT_PURGECTL_FAILURE      1  /* internal or backend error, bad reply */
#define EXIT_PURGECTL_USAGE        2  /* bad command line or bad request */
#define EXIT_PURGECTL_UNREACHABLE  3  /* cannot connect to the daemon, or it went away */
#define EXIT_PURGECTL_FORBIDDEN    4  /* caller not allowed */
#define EXIT_PURGECTL_NOT_FOUND    5  /* no such target or task */
#define EXIT_PURGECTL_CONFLICT     6  /* target busy, or queue full */
#define EXIT_PURGECTL_TASK_FAILED  7  /* the task ended failed */
#define EXIT_PURGECTL_CANCELLED    8  /* the task was cancelled */
#define EXIT_PURGECTL_REFUSED      9  /* confirmation not given */
