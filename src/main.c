/*
 * The stasis program: parse the command line (src/cli/options.c) and run
 * dump, restore, show or check.
 */
#include <stdio.h>
#include <sys/resource.h>

#include "fault.h"
#include "log.h"
#include "options.h"
#include "stasis.h"
#include "util.h"

/* Service fds of a restore sit above the target's fds: allow many. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int run(struct cmdline *c)
{
	int ret;

	switch (c->cmd) {
	case CMD_CHECK:
		if (c->check.faults) {
			fault_list(stdout);
			return 0;
		}
		return cmd_check() ? 1 : 0;
	case CMD_SHOW:
		return cmd_show(c->show.dir, c->show.json) ? 1 : 0;
	case CMD_DUMP:
		raise_nofile();
		return cmd_dump(&c->dump) ? 1 : 0;
	case CMD_RESTORE:
		raise_nofile();
		ret = cmd_restore(&c->restore);
		return ret < 0 ? 1 : ret;
	case CMD_NONE:
		break;
	}
	return 1;
}

int main(int argc, char **argv)
{
	struct cmdline c;
	int ret = 0;

	if (parse_command_line(argc, argv, &c))
		return 1;
	switch (c.action) {
	case CMDLINE_HELP:
		print_usage(stdout, c.cmd);
		break;
	case CMDLINE_VERSION:
		printf("stasis %s\n", STASIS_VERSION);
		break;
	case CMDLINE_USAGE:
		print_usage(stderr, CMD_NONE);
		ret = 1;
		break;
	case CMDLINE_RUN:
		if (log_init(c.log_level, c.log_file)) {
			ret = 1;
			break;
		}
		affinity_save();
		ret = run(&c);
		break;
	}
	cmdline_free(&c);
	return ret;
}
