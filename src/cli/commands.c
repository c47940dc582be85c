/*
 * What each command takes: one option table per command (dump, restore,
 * show, check) and the common options, with the usage text of every
 * option.  Option names are criu's where the meaning is the same.  The
 * parser (options.c) refuses an option given to a command whose table
 * does not have it, naming the commands that do.  See options.h for how
 * to add an option.
 */
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "options.h"
#include "util.h"

/* -v, -vN, -v N, --verbosity[=N]: a level 0-4; -v alone (or -vv...) is 4. */
static int set_verbosity(struct cmdline *c, const struct opt_def *o, const char *arg)
{
	if (!arg || (arg[0] == 'v' && !arg[strspn(arg, "v")])) {
		c->log_level = LOG_DEBUG;
		return 0;
	}
	if (arg[0] < '0' || arg[0] > '0' + LOG_DEBUG || arg[1]) {
		pr_err("bad verbosity '%s'; expected a level 0-4\n", arg);
		return -1;
	}
	c->log_level = arg[0] - '0';
	return 0;
}

static int set_help(struct cmdline *c, const struct opt_def *o, const char *arg)
{
	c->action = CMDLINE_HELP;
	return 0;
}

static int set_version(struct cmdline *c, const struct opt_def *o, const char *arg)
{
	c->action = CMDLINE_VERSION;
	return 0;
}

const struct opt_def common_opts[] = {
	OPT_SPECIAL("verbosity", 'v', optional_argument, "N", set_verbosity,
		    "log level 0-4 (default 2: errors and warnings;\n"
		    "3 adds timings, 4 (or -v alone) debug)"),
	OPT_STRING("log-file", 'o', "FILE", log_file,
		   "write the log to FILE (errors still reach stderr)"),
	OPT_SPECIAL("help", 'h', no_argument, NULL, set_help,
		    "help; `stasis COMMAND --help` for one command"),
	OPT_SPECIAL("version", 'V', no_argument, NULL, set_version, "print the version"),
	OPT_END,
};

/* --manage-cgroups[=soft|full|ignore] (criu's modes; soft without a mode). */
static int set_manage_cgroups(struct cmdline *c, const struct opt_def *o, const char *arg)
{
	static const char *const modes[] = {
		[CG_MANAGE_SOFT] = "soft", [CG_MANAGE_FULL] = "full", [CG_MANAGE_IGNORE] = "ignore"
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(modes); i++)
		if (!arg || !strcmp(arg, modes[i])) {
			c->restore.manage_cgroups = arg ? (enum cg_manage)i : CG_MANAGE_SOFT;
			c->dump.manage_cgroups = true; /* dump saves them whatever the mode */
			return 0;
		}
	pr_err("bad --manage-cgroups mode '%s'; expected soft, full or ignore\n", arg);
	return -1;
}

/* --network-lock nftables|skip (criu's name; nftables is the default). */
static int set_network_lock(struct cmdline *c, const struct opt_def *o, const char *arg)
{
	if (strcmp(arg, "nftables") && strcmp(arg, "skip")) {
		pr_err("bad --network-lock '%s'; expected nftables or skip\n", arg);
		return -1;
	}
	c->dump.network_lock_skip = c->restore.network_lock_skip = !strcmp(arg, "skip");
	return 0;
}

/* --external net[INO]:KEY (criu's form); only network namespaces for now. */
static int set_external(struct cmdline *c, const struct opt_def *o, const char *arg)
{
	struct dump_opts *d = &c->dump;
	const char *p = arg + 4;
	char *end;

	if (strncmp(arg, "net[", 4) || *p < '0' || *p > '9')
		goto bad;
	strtoull(p, &end, 10);
	if (strncmp(end, "]:", 2) || !end[2])
		goto bad;
	d->externals = xrealloc(d->externals, (d->n_externals + 1) * sizeof(*d->externals));
	d->externals[d->n_externals++] = arg;
	return 0;
bad:
	pr_err("bad --external '%s'; expected net[INO]:KEY\n", arg);
	return -1;
}

static char *xmemdup0(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = 0;
	return p;
}

/* A:B, both not empty (dump: MOUNTPOINT:KEY, restore: KEY:PATH). */
static int add_ext_mount(struct ext_mount **v, int *n, const char *arg)
{
	const char *colon = strchr(arg, ':');

	if (!colon || colon == arg || !colon[1]) {
		pr_err("bad --ext-mount-map '%s'; expected A:B\n", arg);
		return -1;
	}
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	(*v)[*n].a = xmemdup0(arg, colon - arg);
	(*v)[*n].b = colon + 1;
	(*n)++;
	return 0;
}

static int set_ext_mount_dump(struct cmdline *c, const struct opt_def *o, const char *arg)
{
	return add_ext_mount(&c->dump.ext_mounts, &c->dump.n_ext_mounts, arg);
}

static int set_ext_mount_restore(struct cmdline *c, const struct opt_def *o, const char *arg)
{
	return add_ext_mount(&c->restore.ext_mounts, &c->restore.n_ext_mounts, arg);
}

static const struct opt_def dump_table[] = {
	OPT_PID_REQUIRED("tree", 't', "PID", dump.pid,
			 "the process to save (with its descendants)"),
	OPT_STRING_REQUIRED("images-dir", 'D', "DIR", dump.dir,
			    "where the image goes (created if missing)"),
	OPT_FLAG("leave-running", 'R', dump.leave_running, "let the process run on after the dump"),
	OPT_FLAG("file-locks", 'l', dump.file_locks,
		 "save the file locks the tree holds (flock, POSIX,\n"
		 "OFD); without it a tree holding a lock is refused"),
	OPT_FLAG("shell-job", 'j', dump.shell_job,
		 "the process was started from a shell: its session\n"
		 "(and terminal) are outside the tree; needed for\n"
		 "such a process"),
	OPT_FLAG("ext-unix-sk", 0, dump.ext_unix_sk,
		 "allow unix sockets connected to sockets outside\n"
		 "the tree; restore reconnects them to the peer's\n"
		 "name, or takes --inherit-fd fd[N]:socket:[INO]\n"
		 "for an unnamed peer"),
	OPT_FLAG("tcp-established", 0, dump.tcp_established,
		 "save established TCP connections (TCP_REPAIR);\n"
		 "without it a tree with one is refused"),
	OPT_SPECIAL("manage-cgroups", 0, optional_argument, "MODE", set_manage_cgroups,
		    "save the settings of the tree's cgroups (memory,\n"
		    "cpu, cpuset and pids limits) with the image"),
	OPT_STRING("freeze-cgroup", 0, "PATH", dump.freeze_cgroup,
		   "freeze the cgroup PATH (v2 cgroup.freeze or v1\n"
		   "freezer) while the tree is seized: no fork escapes"),
	OPT_SPECIAL("network-lock", 0, required_argument, "MODE", set_network_lock,
		    "nftables (default): drop the packets of the tree's\n"
		    "TCP sockets from the freeze until it is killed\n"
		    "(until restore) or runs on; skip: no lock"),
	OPT_FLAG("ext-files", 0, dump.ext_files,
		 "allow pipes and terminals outside the tree at fds\n"
		 "above 2; restore needs --inherit-fd for each"),
	OPT_SPECIAL("external", 0, required_argument, "net[INO]:KEY", set_external,
		    "the tree's network namespace INO is not saved:\n"
		    "restore takes --join-ns net:PATH or --inherit-fd\n"
		    "fd[N]:KEY for it"),
	OPT_SPECIAL("ext-mount-map", 0, required_argument, "KEY:VAL", set_ext_mount_dump,
		    "the tree's mount at mountpoint KEY is outside\n"
		    "the image: saved as the key VAL, restore binds\n"
		    "what --ext-mount-map VAL:PATH gives; repeatable"),
	OPT_END,
};

/* --cgroup-root [CONTROLLERS:]PATH, PATH absolute. */
static int set_cgroup_root(struct cmdline *c, const struct opt_def *o, const char *arg)
{
	struct restore_opts *r = &c->restore;
	const char *colon = strchr(arg, ':'), *path = colon ? colon + 1 : arg;
	char *ctrl = NULL;

	if (path[0] != '/' || (colon && colon == arg)) {
		pr_err("bad --cgroup-root '%s'; expected [CONTROLLERS:]/PATH\n", arg);
		return -1;
	}
	if (colon)
		ctrl = strndup(arg, colon - arg);
	r->cg_roots = xrealloc(r->cg_roots, (r->n_cg_roots + 1) * sizeof(*r->cg_roots));
	r->cg_roots[r->n_cg_roots].ctrl = ctrl;
	r->cg_roots[r->n_cg_roots].path = path;
	r->n_cg_roots++;
	return 0;
}

/* --restore-sibling implies -d. */
static int set_sibling(struct cmdline *c, const struct opt_def *o, const char *arg)
{
	c->restore.sibling = c->restore.detached = true;
	return 0;
}

/* fd[N]:KEY, N a decimal fd number, KEY not empty. */
static int set_inherit_fd(struct cmdline *c, const struct opt_def *o, const char *arg)
{
	struct restore_opts *r = &c->restore;
	const char *p = arg + 3;
	char *end;
	long fd;

	if (strncmp(arg, "fd[", 3) || *p < '0' || *p > '9')
		goto bad;
	errno = 0;
	fd = strtol(p, &end, 10);
	if (errno || fd > INT_MAX || strncmp(end, "]:", 2) || !end[2])
		goto bad;
	r->inherit = xrealloc(r->inherit, (r->n_inherit + 1) * sizeof(*r->inherit));
	r->inherit[r->n_inherit].fd = fd;
	r->inherit[r->n_inherit].key = end + 2;
	r->n_inherit++;
	return 0;
bad:
	pr_err("bad --inherit-fd '%s'; expected fd[N]:KEY\n", arg);
	return -1;
}

/* --join-ns net:PATH (criu's form); only network namespaces for now. */
static int set_join_ns(struct cmdline *c, const struct opt_def *o, const char *arg)
{
	if (strncmp(arg, "net:", 4) || !arg[4]) {
		pr_err("bad --join-ns '%s'; expected net:PATH (only network namespaces are "
		       "joined)\n",
		       arg);
		return -1;
	}
	c->restore.join_net = arg + 4;
	return 0;
}

/* --veth-pair IN=OUT (criu's form): the host end of the tree's veth IN is OUT. */
static int set_veth_pair(struct cmdline *c, const struct opt_def *o, const char *arg)
{
	struct restore_opts *r = &c->restore;
	const char *eq = strchr(arg, '=');
	char *in;

	if (!eq || eq == arg || !eq[1] || eq - arg >= IFNAMSIZ || strlen(eq + 1) >= IFNAMSIZ ||
	    strchr(eq + 1, '/') || strchr(eq + 1, '@')) {
		pr_err("bad --veth-pair '%s'; expected IN=OUT (device names of at most %d "
		       "characters)\n",
		       arg, IFNAMSIZ - 1);
		return -1;
	}
	in = xstrdup(arg);
	in[eq - arg] = '\0';
	r->veth_pairs = xrealloc(r->veth_pairs, (r->n_veth_pairs + 1) * sizeof(*r->veth_pairs));
	r->veth_pairs[r->n_veth_pairs].in = in;
	r->veth_pairs[r->n_veth_pairs].out = eq + 1;
	r->n_veth_pairs++;
	return 0;
}

static const struct opt_def restore_table[] = {
	OPT_STRING_REQUIRED("images-dir", 'D', "DIR", restore.dir, "the image to restore"),
	OPT_FLAG("restore-detached", 'd', restore.detached,
		 "return once the process runs; external fds\n"
		 "are connected to /dev/null"),
	OPT_FLAG("pidns", 0, restore.pidns,
		 "restore into a new PID namespace: the tree gets its\n"
		 "original PIDs there even if they are taken here"),
	OPT_SPECIAL("restore-sibling", 0, no_argument, NULL, set_sibling,
		    "the restored root becomes a child of our parent\n"
		    "(implies -d; the caller can wait for it)"),
	OPT_STRING("pidfile", 0, "FILE", restore.pidfile,
		   "write the restored root's PID (as we see it) to\n"
		   "FILE"),
	OPT_SPECIAL("inherit-fd", 0, required_argument, "fd[N]:KEY", set_inherit_fd,
		    "use our fd N for the external object KEY (as\n"
		    "`stasis show` names it, e.g. pipe:[1234]);\n"
		    "may be given more than once"),
	OPT_SPECIAL("ext-mount-map", 0, required_argument, "KEY:VAL", set_ext_mount_restore,
		    "bind our path VAL where the tree had the external\n"
		    "mount KEY (dump --ext-mount-map); repeatable"),
	OPT_FLAG("skip-file-check", 0, restore.skip_file_check,
		 "restore even if an open file changed size or was\n"
		 "replaced since the dump (refused by default)"),
	OPT_FLAG("skip-audit-session", 0, restore.skip_audit_session,
		 "restore a tree saved in another audit session than\n"
		 "ours (loginuid set again if we may, new sessionid)\n"
		 "instead of refusing it"),
	OPT_FLAG("shell-job", 'j', restore.shell_job,
		 "restore a shell job (dumped with -j): it joins our\n"
		 "session and its terminal fds are our terminal"),
	OPT_FLAG("tcp-established", 0, restore.tcp_established,
		 "accepted for criu's sake: connections saved with\n"
		 "dump --tcp-established are always restored"),
	OPT_FLAG("tcp-close", 0, restore.tcp_close,
		 "restore established TCP connections closed: the\n"
		 "program's fd is an unconnected TCP socket"),
	OPT_SPECIAL("manage-cgroups", 0, optional_argument, "MODE", set_manage_cgroups,
		    "apply the cgroup settings saved by dump\n"
		    "--manage-cgroups: soft (default) to the cgroups\n"
		    "restore creates, full also to existing ones,\n"
		    "ignore to none"),
	OPT_SPECIAL("cgroup-root", 0, required_argument, "[CTRL:]PATH", set_cgroup_root,
		    "put the root task's cgroup (of every hierarchy,\n"
		    "or of CTRL's: memory, cgroup2 ...) at PATH; the\n"
		    "tree's other cgroups follow below it"),
	OPT_SPECIAL("network-lock", 0, required_argument, "MODE", set_network_lock,
		    "nftables (default): drop the packets of the tree's\n"
		    "TCP sockets until it runs, then lift the dump's\n"
		    "lock too; skip: neither"),
	OPT_SPECIAL("join-ns", 0, required_argument, "net:PATH", set_join_ns,
		    "restore the tree into the existing network\n"
		    "namespace PATH (e.g. /run/netns/NAME) instead of\n"
		    "ours or the one it had"),
	OPT_SPECIAL("veth-pair", 0, required_argument, "IN=OUT", set_veth_pair,
		    "name the host end of the tree's veth IN OUT (to\n"
		    "restore next to the running original); repeatable"),
	OPT_END,
};

static const struct opt_def show_table[] = {
	OPT_STRING_REQUIRED("images-dir", 'D', "DIR", show.dir, "the image to describe"),
	OPT_FLAG("json", 0, show.json, "decode every record, as JSON"),
	OPT_END,
};

static const struct opt_def check_table[] = {
	OPT_FLAG("faults", 0, check.faults, "list the fault points of STASIS_FAULT=POINT[:N]"),
	OPT_END,
};

const struct cmd_def commands[] = {
	{ "dump", CMD_DUMP, "save a running process to an image (and stop it, unless -R)",
	  "Freeze process PID, write its complete state to DIR/stasis.img, then kill it.\n"
	  "If anything fails, the process keeps running exactly as before.\n",
	  dump_table },
	{ "restore", CMD_RESTORE, "bring a process back from an image, with its original PID",
	  "Recreate the process saved in DIR with its original PID and let it run.\n"
	  "Without -d, stasis stays in the foreground as its parent and exits with its\n"
	  "exit status; external fds 0-2 (terminal, pipes) are reconnected to stasis's\n"
	  "own.\n",
	  restore_table },
	{ "show", CMD_SHOW, "describe what an image holds",
	  "Describe the image in DIR: processes, registers, mappings, fds, sizes.\n", show_table },
	{ "check", CMD_CHECK, "report whether this kernel offers what stasis needs",
	  "Probe, feature by feature, whether this kernel and machine\n"
	  "offer what stasis needs.  Exit status 0 if all required ones do.\n",
	  check_table },
	{ NULL },
};
