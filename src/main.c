/*
 * Command line: parse options (named like criu's where the meaning is the
 * same) and dispatch to dump, restore, show or check.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "log.h"
#include "stasis.h"
#include "util.h"

static const char usage_main[] =
    "usage: stasis COMMAND [OPTIONS]\n"
    "\n"
    "Checkpoint a running process and restore it later, exactly where it stopped.\n"
    "\n"
    "commands:\n"
    "  dump     save a running process to an image (and stop it, unless -R)\n"
    "  restore  bring a process back from an image, with its original PID\n"
    "  show     describe what an image holds\n"
    "  check    report whether this kernel offers what stasis needs\n"
    "\n"
    "common options:\n"
    "  -v[N], --verbosity N   log level 0-4 (default 2: errors and warnings)\n"
    "  -o, --log-file FILE    write the log to FILE (errors still reach stderr)\n"
    "  -h, --help             help; `stasis COMMAND --help` for one command\n"
    "  -V, --version          print the version\n";

static const char usage_dump[] =
    "usage: stasis dump -t PID -D DIR [-R] [--ext-unix-sk] [--file-locks] [-v N] [-o FILE]\n"
    "\n"
    "Freeze process PID, write its complete state to DIR/stasis.img, then kill it.\n"
    "If anything fails, the process keeps running exactly as before.\n"
    "\n"
    "  -t, --tree PID          the process to save\n"
    "  -D, --images-dir DIR    where the image goes (created if missing)\n"
    "  -R, --leave-running     let the process run on after the dump\n"
    "  -l, --file-locks        save the file locks the tree holds (flock, POSIX, OFD);\n"
    "                          without it a tree holding a lock is refused\n"
    "  -j, --shell-job         the process was started from a shell: its session (and\n"
    "                          terminal) are outside the tree; needed for such a process\n"
    "  --ext-unix-sk           allow unix sockets connected to sockets outside the tree;\n"
    "                          restore reconnects them to the peer's name, or takes\n"
    "                          --inherit-fd fd[N]:socket:[INO] for an unnamed peer\n";

static const char usage_restore[] =
    "usage: stasis restore -D DIR [-d] [--pidns] [--restore-sibling] [--pidfile FILE]\n"
    "                      [--inherit-fd fd[N]:KEY] [--skip-file-check]\n"
    "\n"
    "Recreate the process saved in DIR with its original PID and let it run.\n"
    "Without -d, stasis stays in the foreground as its parent and exits with its\n"
    "exit status; external fds 0-2 (terminal, pipes) are reconnected to stasis's own.\n"
    "\n"
    "  -D, --images-dir DIR        the image to restore\n"
    "  -d, --restore-detached      return once the process runs; external fds\n"
    "                              are connected to /dev/null\n"
    "  --pidns                     restore into a new PID namespace: the tree gets its\n"
    "                              original PIDs there even if they are taken here\n"
    "  --restore-sibling           the restored root becomes a child of our parent\n"
    "                              (implies -d; the caller can wait for it)\n"
    "  --pidfile FILE              write the restored root's PID (as we see it) to FILE\n"
    "  --inherit-fd fd[N]:KEY      use our fd N for the external object KEY\n"
    "                              (as `stasis show` names it, e.g. pipe:[1234])\n"
    "  --skip-file-check           restore even if an open file changed size or was\n"
    "                              replaced since the dump (refused by default)\n"
    "  -j, --shell-job             restore a shell job (dumped with -j): it joins our\n"
    "                              session and its terminal fds are our terminal\n";

static const char usage_show[] = "usage: stasis show -D DIR [--json]\n"
				 "\n"
				 "Describe the image in DIR; --json decodes every record.\n";

static const char usage_check[] =
    "usage: stasis check\n"
    "\n"
    "Probe, feature by feature, whether this kernel and machine\n"
    "offer what stasis needs.  Exit status 0 if all required ones do.\n";

enum {
	OPT_PIDFILE = 256,
	OPT_INHERIT_FD,
	OPT_JSON,
	OPT_PIDNS,
	OPT_SIBLING,
	OPT_EXT_UNIX_SK,
	OPT_SKIP_FILE_CHECK,
};

static const struct option long_opts[] = {
	{ "tree", required_argument, NULL, 't' },
	{ "images-dir", required_argument, NULL, 'D' },
	{ "leave-running", no_argument, NULL, 'R' },
	{ "restore-detached", no_argument, NULL, 'd' },
	{ "shell-job", no_argument, NULL, 'j' },
	{ "log-file", required_argument, NULL, 'o' },
	{ "verbosity", optional_argument, NULL, 'v' },
	{ "pidfile", required_argument, NULL, OPT_PIDFILE },
	{ "inherit-fd", required_argument, NULL, OPT_INHERIT_FD },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "pidns", no_argument, NULL, OPT_PIDNS },
	{ "restore-sibling", no_argument, NULL, OPT_SIBLING },
	{ "ext-unix-sk", no_argument, NULL, OPT_EXT_UNIX_SK },
	{ "file-locks", no_argument, NULL, 'l' },
	{ "skip-file-check", no_argument, NULL, OPT_SKIP_FILE_CHECK },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static const char *command_usage(const char *cmd)
{
	if (!cmd)
		return usage_main;
	if (!strcmp(cmd, "dump"))
		return usage_dump;
	if (!strcmp(cmd, "restore"))
		return usage_restore;
	if (!strcmp(cmd, "show"))
		return usage_show;
	if (!strcmp(cmd, "check"))
		return usage_check;
	return usage_main;
}

static int parse_inherit_fd(const char *arg, struct restore_opts *r)
{
	int fd, n = 0;

	if (sscanf(arg, "fd[%d]:%n", &fd, &n) != 1 || !n || !arg[n] || fd < 0) {
		pr_err("bad --inherit-fd '%s'; expected fd[N]:KEY\n", arg);
		return -1;
	}
	r->inherit = xrealloc(r->inherit, (r->n_inherit + 1) * sizeof(*r->inherit));
	r->inherit[r->n_inherit].fd = fd;
	r->inherit[r->n_inherit].key = arg + n;
	r->n_inherit++;
	return 0;
}

/* Service fds of a restore sit above the target's fds: allow many. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	struct dump_opts d = { 0 };
	struct restore_opts r = { 0 };
	const char *cmd = NULL, *dir = NULL, *log_file = NULL;
	int level = LOG_WARN, opt, ret;
	bool json = false;
	char *end;

	if (argc > 1 && argv[1][0] != '-') {
		cmd = argv[1];
		argv++;
		argc--;
	}
	while ((opt = getopt_long(argc, argv, "t:D:Rdjlo:v::hV", long_opts, NULL)) != -1) {
		switch (opt) {
		case 't':
			d.pid = strtol(optarg, &end, 10);
			if (*end || d.pid <= 0) {
				pr_err("bad pid '%s'\n", optarg);
				return 1;
			}
			break;
		case 'D':
			dir = optarg;
			break;
		case 'R':
			d.leave_running = true;
			break;
		case 'd':
			r.detached = true;
			break;
		case 'j':
			d.shell_job = r.shell_job = true;
			break;
		case 'o':
			log_file = optarg;
			break;
		case 'v':
			if (optarg)
				level = atoi(optarg);
			else if (optind < argc && argv[optind][0] >= '0' &&
				 argv[optind][0] <= '9' && !argv[optind][1])
				level = atoi(argv[optind++]);
			else
				level = LOG_DEBUG;
			break;
		case OPT_PIDFILE:
			r.pidfile = optarg;
			break;
		case OPT_INHERIT_FD:
			if (parse_inherit_fd(optarg, &r))
				return 1;
			break;
		case OPT_JSON:
			json = true;
			break;
		case OPT_PIDNS:
			r.pidns = true;
			break;
		case 'l':
			d.file_locks = true;
			break;
		case OPT_SKIP_FILE_CHECK:
			r.skip_file_check = true;
			break;
		case OPT_SIBLING:
			r.sibling = r.detached = true;
			break;
		case OPT_EXT_UNIX_SK:
			d.ext_unix_sk = true;
			break;
		case 'h':
			fputs(command_usage(cmd), stdout);
			return 0;
		case 'V':
			printf("stasis %s\n", STASIS_VERSION);
			return 0;
		default:
			fputs(command_usage(cmd), stderr);
			return 1;
		}
	}
	if (!cmd) {
		fputs(usage_main, stderr);
		return 1;
	}
	if (optind < argc) {
		pr_err("unexpected argument '%s'\n", argv[optind]);
		return 1;
	}
	if (log_init(level, log_file))
		return 1;
	affinity_save();
	if (!strcmp(cmd, "check"))
		return cmd_check() ? 1 : 0;
	if (strcmp(cmd, "dump") && strcmp(cmd, "restore") && strcmp(cmd, "show")) {
		pr_err("unknown command '%s'; see stasis --help\n", cmd);
		return 1;
	}
	if (!dir) {
		pr_err("%s needs -D DIR (the image directory)\n", cmd);
		return 1;
	}
	if (!strcmp(cmd, "show"))
		return cmd_show(dir, json) ? 1 : 0;
	raise_nofile();
	if (!strcmp(cmd, "dump")) {
		if (!d.pid) {
			pr_err("dump needs -t PID\n");
			return 1;
		}
		d.dir = dir;
		return cmd_dump(&d) ? 1 : 0;
	}
	r.dir = dir;
	ret = cmd_restore(&r);
	free(r.inherit);
	return ret < 0 ? 1 : ret;
}
