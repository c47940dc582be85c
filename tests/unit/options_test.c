/*
 * Unit tests of the command line (src/cli): every command's options land
 * in the right fields, an option of another command, a missing or bad
 * argument, an unknown command or option and a surplus argument are each
 * refused with the expected single error line, the tables agree with one
 * another, and the usage lists every option.  Needs no root.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "log.h"
#include "options.h"
#include "unit.h"

static int err_fd;	 /* where pr_err() writes during a parse */
static char err[4096];	 /* what the last parse printed */
static char words[4096]; /* the words of the last command line */
static char *argv_buf[64];

/*
 * Parse "stasis LINE" (LINE split at spaces) into C; the error output is
 * left in err[].  The words stay valid until the next call.
 */
static int parse(struct cmdline *c, const char *line)
{
	int argc = 0, ret;
	ssize_t n;
	char *w;

	snprintf(words, sizeof(words), "%s", line);
	argv_buf[argc++] = "stasis";
	for (w = strtok(words, " "); w && argc < 63; w = strtok(NULL, " "))
		argv_buf[argc++] = w;
	argv_buf[argc] = NULL;
	if (ftruncate(err_fd, 0) || lseek(err_fd, 0, SEEK_SET))
		abort();
	ret = parse_command_line(argc, argv_buf, c);
	n = pread(err_fd, err, sizeof(err) - 1, 0);
	err[n > 0 ? n : 0] = '\0';
	return ret;
}

/* LINE parses, without a word on stderr. */
#define PARSE_OK(c, line)                                                                        \
	do {                                                                                     \
		int ret_ = parse(c, line);                                                       \
		CHECK(ret_ == 0 && !err[0], "'%s': returned %d, printed '%s'", line, ret_, err); \
	} while (0)

/* LINE is refused with exactly the line "Error: MSG\n" (and frees what it parsed). */
#define PARSE_FAILS(line, msg)                                                                   \
	do {                                                                                     \
		struct cmdline c_;                                                               \
		int ret_ = parse(&c_, line);                                                     \
		cmdline_free(&c_);                                                               \
		CHECK(ret_ == -1, "'%s' accepted (returned %d)", line, ret_);                    \
		CHECK(!strcmp(err, "Error: " msg "\n"), "'%s': printed '%s', wanted '%s'", line, \
		      err, "Error: " msg "\n");                                                  \
	} while (0)

static void test_dump(void)
{
	struct cmdline c;

	PARSE_OK(&c, "dump -t 42 -D img -R -l -j --ext-unix-sk");
	CHECK(c.action == CMDLINE_RUN && c.cmd == CMD_DUMP && !strcmp(c.cmd_name, "dump"),
	      "action %d cmd %d", c.action, c.cmd);
	CHECK(c.dump.pid == 42 && c.dump.dir && !strcmp(c.dump.dir, "img"), "pid %d dir %s",
	      c.dump.pid, c.dump.dir);
	CHECK(c.dump.leave_running && c.dump.file_locks && c.dump.shell_job && c.dump.ext_unix_sk,
	      "a dump flag was not set");
	CHECK(!c.restore.shell_job && !c.restore.dir && !c.show.dir, "another command's field set");
	CHECK(c.log_level == LOG_WARN && !c.log_file, "log %d %s", c.log_level, c.log_file);

	PARSE_OK(&c, "dump --tree=7 --images-dir img2");
	CHECK(c.dump.pid == 7 && !strcmp(c.dump.dir, "img2"), "long forms: pid %d dir %s",
	      c.dump.pid, c.dump.dir);
	CHECK(!c.dump.leave_running && !c.dump.file_locks && !c.dump.shell_job &&
		  !c.dump.ext_unix_sk,
	      "a flag not given is set");
	PARSE_OK(&c, "dump --leave-running --file-locks --shell-job -D d --tree 9 -o log");
	CHECK(c.dump.leave_running && c.dump.file_locks && c.dump.shell_job && c.dump.pid == 9,
	      "long flags");
	CHECK(c.log_file && !strcmp(c.log_file, "log"), "log file %s", c.log_file);
	PARSE_OK(&c, "dump -RljD dir -t5");
	CHECK(c.dump.leave_running && c.dump.file_locks && c.dump.shell_job && c.dump.pid == 5 &&
		  !strcmp(c.dump.dir, "dir"),
	      "clustered short options");
	printf("  ok dump options\n");
}

static void test_restore(void)
{
	struct cmdline c;

	PARSE_OK(&c, "restore -D img -d --pidns --pidfile pf --skip-file-check -j");
	CHECK(c.cmd == CMD_RESTORE && !strcmp(c.restore.dir, "img"), "cmd %d", c.cmd);
	CHECK(c.restore.detached && c.restore.pidns && c.restore.skip_file_check &&
		  c.restore.shell_job && !c.restore.sibling,
	      "a restore flag is wrong");
	CHECK(c.restore.pidfile && !strcmp(c.restore.pidfile, "pf"), "pidfile %s",
	      c.restore.pidfile);
	CHECK(!c.dump.shell_job && !c.dump.dir && c.restore.n_inherit == 0, "other fields set");
	cmdline_free(&c);

	PARSE_OK(&c, "restore --images-dir img --restore-sibling");
	CHECK(c.restore.sibling && c.restore.detached, "--restore-sibling must imply -d");
	CHECK(!c.restore.pidns && !c.restore.pidfile && !c.restore.shell_job, "stray flags");
	cmdline_free(&c);
	PARSE_OK(&c, "restore -D img --restore-detached --shell-job");
	CHECK(c.restore.detached && c.restore.shell_job && !c.restore.sibling, "long -d -j");
	cmdline_free(&c);
	printf("  ok restore options\n");
}

static void test_show_check(void)
{
	struct cmdline c;

	PARSE_OK(&c, "show -D img --json");
	CHECK(c.cmd == CMD_SHOW && !strcmp(c.show.dir, "img") && c.show.json, "show -D --json");
	PARSE_OK(&c, "show --images-dir img");
	CHECK(!strcmp(c.show.dir, "img") && !c.show.json, "show without --json");
	PARSE_OK(&c, "check");
	CHECK(c.cmd == CMD_CHECK && c.action == CMDLINE_RUN, "check: cmd %d", c.cmd);
	PARSE_OK(&c, "check -v3 -o f");
	CHECK(c.log_level == 3 && !strcmp(c.log_file, "f"), "check takes the common options");
	printf("  ok show and check options\n");
}

static void test_inherit_fd(void)
{
	static const char *const bad[] = {
		"fd[3]",    "fd[3]:",	 "3:pipe",   "fd[]:k", "fd[-1]:k", "fd[x]:k",
		"fd[3]x:k", "fd[\t3]:k", "fd[+3]:k", "fd3:k",  "fd[3:k",   "fd[99999999999]:k",
		"FD[3]:k",
	};
	struct cmdline c;
	char line[128], msg[256];
	size_t i;

	PARSE_OK(&c, "restore -D i --inherit-fd fd[0]:pipe:[5] --inherit-fd=fd[12]:tty:/dev/pts/3");
	CHECK(c.restore.n_inherit == 2, "%d inherited fds", c.restore.n_inherit);
	CHECK(c.restore.inherit[0].fd == 0 && !strcmp(c.restore.inherit[0].key, "pipe:[5]"),
	      "first: fd %d key %s", c.restore.inherit[0].fd, c.restore.inherit[0].key);
	CHECK(c.restore.inherit[1].fd == 12 && !strcmp(c.restore.inherit[1].key, "tty:/dev/pts/3"),
	      "second: fd %d key %s", c.restore.inherit[1].fd, c.restore.inherit[1].key);
	cmdline_free(&c);
	CHECK(!c.restore.inherit && !c.restore.n_inherit, "cmdline_free left the array");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(line, sizeof(line), "restore -D i --inherit-fd %s", bad[i]);
		snprintf(msg, sizeof(msg), "Error: bad --inherit-fd '%s'; expected fd[N]:KEY\n",
			 bad[i]);
		CHECK(parse(&c, line) == -1, "'%s' accepted", bad[i]);
		cmdline_free(&c);
		CHECK(!strcmp(err, msg), "'%s': printed '%s'", bad[i], err);
	}
	/* a failed parse frees what it had taken */
	CHECK(parse(&c, "restore -D i --inherit-fd fd[1]:k --json") == -1, "--json accepted");
	CHECK(!c.restore.inherit && !c.restore.n_inherit, "a failed parse left %d inherited fds",
	      c.restore.n_inherit);
	printf("  ok --inherit-fd, good and %zu bad forms\n", i);
}

static void test_verbosity(void)
{
	static const struct {
		const char *line;
		int level;
	} good[] = {
		{ "dump -t 1 -D d", LOG_WARN },
		{ "dump -t 1 -D d -v", LOG_DEBUG },
		{ "dump -t 1 -D d -v4", 4 },
		{ "dump -t 1 -D d -v0", 0 },
		{ "dump -t 1 -D d -v 4", 4 },
		{ "dump -v 1 -t 1 -D d", 1 },
		{ "dump -t 1 -D d --verbosity=3", 3 },
		{ "dump -t 1 -D d --verbosity 2", 2 },
		{ "dump -t 1 -D d --verbosity", LOG_DEBUG },
		{ "dump -t 1 -D d -vv", LOG_DEBUG },
		{ "dump -v -t 1 -D d", LOG_DEBUG },
		{ "dump -t 1 -D d -v0 -v3", 3 },
	};
	struct cmdline c;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		PARSE_OK(&c, good[i].line);
		CHECK(c.log_level == good[i].level, "'%s': level %d, wanted %d", good[i].line,
		      c.log_level, good[i].level);
		CHECK(c.dump.pid == 1 && !strcmp(c.dump.dir, "d"), "'%s': pid %d", good[i].line,
		      c.dump.pid);
	}
	PARSE_FAILS("dump -t 1 -D d -v9", "bad verbosity '9'; expected a level 0-4");
	PARSE_FAILS("dump -t 1 -D d -vx", "bad verbosity 'x'; expected a level 0-4");
	PARSE_FAILS("dump -t 1 -D d --verbosity=high",
		    "bad verbosity 'high'; expected a level 0-4");
	PARSE_FAILS("dump -t 1 -D d --verbosity=", "bad verbosity ''; expected a level 0-4");
	/* only a single digit is taken from the next word */
	PARSE_FAILS("dump -t 1 -D d -v 12", "unexpected argument '12'");
	printf("  ok -v forms\n");
}

static void test_wrong_command(void)
{
	PARSE_FAILS("restore -t 1 -R -D x",
		    "restore does not take -t (--tree); it is a dump option");
	PARSE_FAILS("restore -D x -R",
		    "restore does not take -R (--leave-running); it is a dump option");
	PARSE_FAILS("check -D x",
		    "check does not take -D (--images-dir); it is a dump, restore and show option");
	PARSE_FAILS("show -D x -j",
		    "show does not take -j (--shell-job); it is a dump and restore option");
	PARSE_FAILS("dump -t 1 -D x --pidns", "dump does not take --pidns; it is a restore option");
	PARSE_FAILS("dump -t 1 -D x -d",
		    "dump does not take -d (--restore-detached); it is a restore option");
	PARSE_FAILS("restore -D x --json", "restore does not take --json; it is a show option");
	PARSE_FAILS("show -D x --inherit-fd fd[1]:k",
		    "show does not take --inherit-fd; it is a restore option");
	PARSE_FAILS("restore -D x --ext-unix-sk",
		    "restore does not take --ext-unix-sk; it is a dump option");
	/* refused even where its argument is missing */
	PARSE_FAILS("restore -D x -t", "restore does not take -t (--tree); it is a dump option");
	/* an abbreviation that means an option of another command */
	PARSE_FAILS("dump -t 1 -D x --pidf f",
		    "dump does not take --pidfile; it is a restore option");
	PARSE_FAILS("-t 1 dump", "-t (--tree) goes after the command; it is a dump option");
	printf("  ok options of other commands refused\n");
}

/* A word to give option O: "1" for a pid, a good --inherit-fd, ... */
static const char *sample_arg(const struct opt_def *o)
{
	if (!o->arg || o->has_arg == optional_argument)
		return NULL;
	if (!strcmp(o->arg, "PID"))
		return "1";
	if (!strcmp(o->arg, "fd[N]:KEY"))
		return "fd[1]:k";
	return "x";
}

static bool takes(const struct cmd_def *cmd, const char *name)
{
	const struct opt_def *o;

	for (o = cmd->opts; o->name; o++)
		if (!strcmp(o->name, name))
			return true;
	return false;
}

/*
 * Every option of every table, given to every command: accepted by the
 * commands whose table has it, refused naming the command by the others.
 */
static void test_every_option(void)
{
	const struct cmd_def *cmd, *other;
	const struct opt_def *o;
	char line[256], want[256];
	struct cmdline c;
	int n = 0, ret;

	for (cmd = commands; cmd->name; cmd++) {
		for (other = commands; other->name; other++) {
			for (o = other->opts; o->name; o++, n++) {
				const char *a = sample_arg(o);

				snprintf(line, sizeof(line), "%s --%s%s%s", cmd->name, o->name,
					 a ? "=" : "", a ? a : "");
				ret = parse(&c, line);
				cmdline_free(&c);
				if (takes(cmd, o->name)) {
					CHECK(!strstr(err, "does not take"), "'%s': %s", line, err);
					continue;
				}
				snprintf(want, sizeof(want), "Error: %s does not take ", cmd->name);
				CHECK(ret == -1 && !strncmp(err, want, strlen(want)) &&
					  strstr(err, other->name),
				      "'%s': returned %d, printed '%s'", line, ret, err);
			}
		}
	}
	printf("  ok %d option/command pairs\n", n);
}

static void test_missing(void)
{
	PARSE_FAILS("dump", "dump needs -t PID (--tree)");
	PARSE_FAILS("dump -D x", "dump needs -t PID (--tree)");
	PARSE_FAILS("dump -t 1", "dump needs -D DIR (--images-dir)");
	PARSE_FAILS("restore", "restore needs -D DIR (--images-dir)");
	PARSE_FAILS("restore -d", "restore needs -D DIR (--images-dir)");
	PARSE_FAILS("show --json", "show needs -D DIR (--images-dir)");
	PARSE_FAILS("restore -D", "-D (--images-dir) needs an argument (DIR)");
	PARSE_FAILS("dump -D x -t", "-t (--tree) needs an argument (PID)");
	PARSE_FAILS("restore -D x --pidfile", "--pidfile needs an argument (FILE)");
	PARSE_FAILS("dump -t 1 -D x -o", "-o (--log-file) needs an argument (FILE)");
	printf("  ok missing options and arguments\n");
}

static void test_bad_pid(void)
{
	PARSE_FAILS("dump -t notapid -D x", "bad pid 'notapid'");
	PARSE_FAILS("dump -t -5 -D x", "bad pid '-5'");
	PARSE_FAILS("dump -t 0 -D x", "bad pid '0'");
	PARSE_FAILS("dump -t 12x -D x", "bad pid '12x'");
	PARSE_FAILS("dump --tree= -D x", "bad pid ''");
	PARSE_FAILS("dump -t 99999999999 -D x", "bad pid '99999999999'");
	PARSE_FAILS("dump -t 2147483648 -D x", "bad pid '2147483648'");
	printf("  ok bad pids\n");
}

static void test_commands(void)
{
	struct cmdline c;

	PARSE_FAILS("frobnicate", "unknown command 'frobnicate'; see stasis --help");
	PARSE_FAILS("frobnicate -t 1", "unknown command 'frobnicate'; see stasis --help");
	PARSE_FAILS("Dump -t 1 -D x", "unknown command 'Dump'; see stasis --help");
	PARSE_OK(&c, "");
	CHECK(c.action == CMDLINE_USAGE && c.cmd == CMD_NONE, "no command: action %d", c.action);
	PARSE_OK(&c, "-v4");
	CHECK(c.action == CMDLINE_USAGE, "only -v4: action %d", c.action);
	PARSE_OK(&c, "-h");
	CHECK(c.action == CMDLINE_HELP && c.cmd == CMD_NONE, "-h: action %d", c.action);
	PARSE_OK(&c, "--help");
	CHECK(c.action == CMDLINE_HELP && c.cmd == CMD_NONE, "--help: action %d", c.action);
	PARSE_OK(&c, "restore --help");
	CHECK(c.action == CMDLINE_HELP && c.cmd == CMD_RESTORE, "restore --help: %d", c.action);
	PARSE_OK(&c, "dump -h -t bad");
	CHECK(c.action == CMDLINE_HELP && c.cmd == CMD_DUMP, "-h stops the parse: %d", c.action);
	PARSE_OK(&c, "-V");
	CHECK(c.action == CMDLINE_VERSION, "-V: action %d", c.action);
	PARSE_OK(&c, "show --version");
	CHECK(c.action == CMDLINE_VERSION, "show --version: action %d", c.action);
	PARSE_FAILS("-v4 dump -t 1 -D x", "the command comes first: stasis dump [OPTIONS]");
	printf("  ok commands, help and version\n");
}

static void test_extra_and_unknown(void)
{
	struct cmdline c;

	PARSE_FAILS("dump -t 1 -D x extra", "unexpected argument 'extra'");
	PARSE_FAILS("dump extra -t 1 -D x", "unexpected argument 'extra'");
	PARSE_FAILS("check now", "unexpected argument 'now'");
	PARSE_FAILS("show -D x y", "unexpected argument 'y'");
	PARSE_FAILS("restore -D x dump", "unexpected argument 'dump'");
	PARSE_FAILS("dump -t 1 -D x --frob", "unknown option '--frob'; see stasis dump --help");
	PARSE_FAILS("dump -t 1 -D x --frob=1", "unknown option '--frob'; see stasis dump --help");
	PARSE_FAILS("restore -D x -Z", "unknown option '-Z'; see stasis restore --help");
	PARSE_FAILS("dump -Rx -t 1 -D x", "unknown option '-x'; see stasis dump --help");
	PARSE_FAILS("--frob", "unknown option '--frob'; see stasis --help");
	PARSE_FAILS("restore -D x --re", "ambiguous option '--re'; see stasis restore --help");
	PARSE_FAILS("show -D x --json=1", "--json takes no argument");
	PARSE_FAILS("dump -t 1 -D x --ext-mount-map nocolon",
		    "bad --ext-mount-map 'nocolon'; expected A:B");
	PARSE_OK(&c, "restore -D x --ext-mount-map k:/a --ext-mount-map j:/b");
	CHECK(c.restore.n_ext_mounts == 2 && !strcmp(c.restore.ext_mounts[1].a, "j") &&
		  !strcmp(c.restore.ext_mounts[1].b, "/b"),
	      "--ext-mount-map pairs");
	cmdline_free(&c);
	/* a parse after a failure in the middle of a cluster starts afresh */
	PARSE_OK(&c, "dump -R -t 3 -D y");
	CHECK(c.dump.pid == 3 && c.dump.leave_running, "parse after a failed one");
	printf("  ok surplus arguments and unknown options\n");
}

/* Across all tables: one long name, one letter, one kind of argument. */
static void check_pair(const struct opt_def *a, const struct opt_def *b)
{
	if (!strcmp(a->name, b->name))
		CHECK(a->letter == b->letter && a->has_arg == b->has_arg &&
			  !strcmp(a->arg ? a->arg : "", b->arg ? b->arg : ""),
		      "--%s is defined two ways", a->name);
	else if (a->letter)
		CHECK(a->letter != b->letter, "-%c is both --%s and --%s", a->letter, a->name,
		      b->name);
}

static void test_tables(void)
{
	const struct opt_def *all[128], *o;
	const struct cmd_def *cmd;
	size_t n = 0, i, j;
	int before = failed;

	for (o = common_opts; o->name; o++)
		all[n++] = o;
	for (cmd = commands; cmd->name; cmd++) {
		for (o = cmd->opts; o->name && n < 128; o++) {
			all[n++] = o;
			CHECK(!takes(&(struct cmd_def){ .opts = common_opts }, o->name),
			      "--%s is both common and a %s option", o->name, cmd->name);
			CHECK(!o->required || o->arg, "required --%s has no argument", o->name);
		}
	}
	for (i = 0; i < n; i++) {
		CHECK(all[i]->help && all[i]->help[0], "--%s has no help", all[i]->name);
		CHECK(all[i]->set, "--%s has no setter", all[i]->name);
		CHECK((all[i]->has_arg == no_argument) == !all[i]->arg,
		      "--%s: argument name and kind disagree", all[i]->name);
		for (j = i + 1; j < n; j++)
			check_pair(all[i], all[j]);
	}
	if (failed == before)
		printf("  ok %zu table lines agree\n", n);
}

/* The usage of CMD: no line over 79 columns, every option of its table. */
static void check_usage(const struct cmd_def *cmd, enum command which)
{
	const struct opt_def *o;
	char *text = NULL, *line, opt[64];
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);

	CHECK(f, "open_memstream");
	print_usage(f, which);
	fclose(f);
	for (line = text; *line;) {
		size_t len = strcspn(line, "\n");

		CHECK(len <= 79, "usage line over 79 columns: %.*s", (int)len, line);
		line += len + (line[len] == '\n');
	}
	for (o = common_opts; o->name; o++) {
		snprintf(opt, sizeof(opt), "--%s", o->name);
		CHECK(strstr(text, opt), "usage does not list %s", opt);
	}
	for (o = cmd ? cmd->opts : common_opts; cmd && o->name; o++) {
		snprintf(opt, sizeof(opt), "--%s", o->name);
		CHECK(strstr(text, opt), "usage of %s does not list %s", cmd->name, opt);
	}
	if (cmd) {
		snprintf(opt, sizeof(opt), "usage: stasis %s ", cmd->name);
		CHECK(!strncmp(text, opt, strlen(opt)), "usage of %s starts '%.40s'", cmd->name,
		      text);
	} else {
		for (cmd = commands; cmd->name; cmd++) {
			snprintf(opt, sizeof(opt), "  %s ", cmd->name);
			CHECK(strstr(text, opt), "main usage does not list %s", cmd->name);
		}
	}
	free(text);
}

static void test_usage(void)
{
	const struct cmd_def *cmd;
	int before = failed;

	check_usage(NULL, CMD_NONE);
	for (cmd = commands; cmd->name; cmd++)
		check_usage(cmd, cmd->cmd);
	if (failed == before)
		printf("  ok usage texts\n");
}

int main(void)
{
	err_fd = memfd_create("stasis-options-test", 0);
	if (err_fd < 0) {
		perror("memfd_create");
		return 1;
	}
	log_fd_set(err_fd);
	test_dump();
	test_restore();
	test_show_check();
	test_inherit_fd();
	test_verbosity();
	test_wrong_command();
	test_every_option();
	test_missing();
	test_bad_pid();
	test_commands();
	test_extra_and_unknown();
	test_tables();
	test_usage();
	log_fd_set(STDERR_FILENO);
	printf("%s\n", failed ? "FAIL" : "ok");
	return failed ? 1 : 0;
}
