/*
 * purged: command line, configuration check (-t), then the supervisor.
 * Nothing else happens here.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "buildconf.h"
#include "daemon/purged.h"
#include "purged/log.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: purged [-c FILE] [-t] [-d]\n"
		"Privileged service that purges backend systems on request, through sandboxed executors.\n"
		"\n"
		"  -c, --config FILE  configuration file (default %s),\n"
		"                     then its drop-ins FILE.d/*.conf in name order\n"
		"  -t, --test         check the configuration, print 'configuration OK' or\n"
		"                     FILE:LINE errors, and exit 0 or 1\n"
		"  -d, --debug        log debug messages\n"
		"  -h, --help         show this help\n"
		"  -V, --version      show the version\n"
		"\n"
		"Runs in the foreground and logs to stderr (journald priority prefixes when not a terminal).\n"
		"Signals: SIGHUP reloads the configuration (a broken one is rejected and the old one stays);\n"
		"SIGTERM/SIGINT stop accepting requests, cancel running tasks after cancel_grace seconds,\n"
		"record their end and exit 0.\n"
		"Exit status: 0 on a clean stop or a valid configuration, 1 on errors.\n"
		"See purged(8) and purged.conf(5).\n",
		PURGED_DEFAULT_CONFIG);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "test", no_argument, NULL, 't' },
		{ "debug", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "test-probes", no_argument, NULL, 'P' }, /* tests only: see purged(8) */
		{ NULL, 0, NULL, 0 },
	};
	const char *path = PURGED_DEFAULT_CONFIG;
	bool test = false, debug = false, probes = false;
	struct config_errors errs = { 0 };
	struct daemon_conf *conf = NULL;
	int c;

	while ((c = getopt_long(argc, argv, "c:tdhV", opts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 't': test = true; break;
		case 'd': debug = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("purged %s (protocol %d)\n", PURGED_VERSION, PURGE_PROTO_VERSION); return 0;
		case 'P': probes = true; break;
		default: usage(stderr); return 1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "purged: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 1;
	}

	log_init("purged", debug);
	if (config_load(path, &conf, &errs) < 0) {
		/* Under systemd (the unit's ExecStartPre and ExecReload run -t) the journal files these at err, not info. */
		const char *prio = getenv("JOURNAL_STREAM") ? "<3>" : "";
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s%s\n", prio, errs.v[i]);
		fprintf(stderr, "%spurged: configuration %s has %zu error(s)\n", prio, path, errs.n);
		config_errors_clear(&errs);
		return 1;
	}
	if (test) {
		printf("%s: configuration OK (%zu target(s))\n", path, conf->n_targets);
		config_free(conf);
		return 0;
	}
	if (probes)
		log_warnx("--test-probes: noop targets with probe = yes may run; for tests only");
	return supervisor_run(conf, path, probes);
}
