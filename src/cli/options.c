/*
 * Command-line parsing and usage, driven by the tables of commands.c.
 * getopt_long is given every option of every table, so that an option of
 * another command is recognised and refused by name ("restore does not
 * take -t (--tree); it is a dump option") rather than as unknown; each
 * option found is then looked up in the command's own table and in the
 * common one, and its setter stores it in struct cmdline.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "options.h"
#include "util.h"

#define LONG_ONLY_VAL 256 /* getopt value of a long-only option: 256 + its index */
#define HELP_COL      28  /* where option help starts in the usage */

/* Every option of every table, once (by long name), as getopt_long wants them. */
struct opt_union {
	struct option *lopts;	    /* ends with a zeroed entry */
	const struct opt_def **def; /* the first table line of each */
	size_t n;
	char *shorts; /* ":t:D:Rv::..." */
};

static size_t table_len(const struct opt_def *t)
{
	size_t n = 0;

	while (t[n].name)
		n++;
	return n;
}

static const struct opt_def *table_find(const struct opt_def *t, const char *name)
{
	for (; t->name; t++)
		if (!strcmp(t->name, name))
			return t;
	return NULL;
}

static void union_add_table(struct opt_union *u, const struct opt_def *t)
{
	char *s = u->shorts + strlen(u->shorts);
	size_t i;

	for (; t->name; t++) {
		for (i = 0; i < u->n && strcmp(u->lopts[i].name, t->name); i++)
			;
		if (i < u->n)
			continue;
		u->lopts[u->n] =
		    (struct option){ t->name, t->has_arg, NULL,
				     t->letter ? t->letter : LONG_ONLY_VAL + (int)u->n };
		u->def[u->n++] = t;
		if (!t->letter)
			continue;
		*s++ = t->letter;
		if (t->has_arg != no_argument)
			*s++ = ':';
		if (t->has_arg == optional_argument)
			*s++ = ':';
	}
	*s = '\0';
}

/*
 * Before a command (CMD NULL), stop at the first non-option: `stasis -v4
 * dump -t 1` is told the command comes first.
 */
static void union_build(struct opt_union *u, const struct cmd_def *cmd)
{
	const struct cmd_def *c;
	size_t max = table_len(common_opts);

	for (c = commands; c->name; c++)
		max += table_len(c->opts);
	u->lopts = xzalloc((max + 1) * sizeof(*u->lopts));
	u->def = xzalloc(max * sizeof(*u->def));
	u->shorts = xzalloc(2 + 3 * max + 1);
	strcpy(u->shorts, cmd ? ":" : "+:"); /* ':': a missing argument returns ':' */
	u->n = 0;
	union_add_table(u, common_opts);
	for (c = commands; c->name; c++)
		union_add_table(u, c->opts);
}

static void union_free(struct opt_union *u)
{
	free(u->lopts);
	free(u->def);
	free(u->shorts);
}

/* The union entry getopt_long returned VAL for, or -1. */
static int union_index(const struct opt_union *u, int val)
{
	size_t i;

	for (i = 0; i < u->n; i++)
		if (u->lopts[i].val == val)
			return i;
	return -1;
}

/* "-t (--tree)" or "--pidns". */
static const char *opt_label(const struct opt_def *o, char *buf, size_t size)
{
	if (o->letter)
		snprintf(buf, size, "-%c (--%s)", o->letter, o->name);
	else
		snprintf(buf, size, "--%s", o->name);
	return buf;
}

static const struct cmd_def *command_find(const char *name)
{
	const struct cmd_def *c;

	for (c = commands; c->name; c++)
		if (!strcmp(c->name, name))
			return c;
	return NULL;
}

/* What goes before the Kth of N names: "dump, restore and show". */
static const char *list_sep(size_t k, size_t n)
{
	if (k == 1)
		return "";
	return k == n ? " and " : ", ";
}

/* Refuse O, which CMD (NULL: no command yet) does not take: name the ones that do. */
static int refuse_foreign(const struct cmd_def *cmd, const struct opt_def *o)
{
	const struct cmd_def *c;
	char label[64], owners[128] = "";
	size_t n = 0, k = 0;

	for (c = commands; c->name; c++)
		n += table_find(c->opts, o->name) != NULL;
	for (c = commands; c->name; c++) {
		if (!table_find(c->opts, o->name))
			continue;
		k++;
		snprintf(owners + strlen(owners), sizeof(owners) - strlen(owners), "%s%s",
			 list_sep(k, n), c->name);
	}
	opt_label(o, label, sizeof(label));
	if (cmd)
		pr_err("%s does not take %s; it is a %s option\n", cmd->name, label, owners);
	else
		pr_err("%s goes after the command; it is a %s option\n", label, owners);
	return -1;
}

/* The word getopt_long stopped at; "--name" of an ambiguous abbreviation. */
static int refuse_unknown(const struct cmd_def *cmd, const struct opt_union *u, const char *word)
{
	size_t i, len, n = 0;

	if (!strncmp(word, "--", 2)) {
		len = strcspn(word + 2, "=");
		for (i = 0; i < u->n; i++)
			n += !strncmp(u->lopts[i].name, word + 2, len);
	}
	pr_err("%s option '%.*s'; see stasis %s%s--help\n", n > 1 ? "ambiguous" : "unknown",
	       (int)strcspn(word, "="), word, cmd ? cmd->name : "", cmd ? " " : "");
	return -1;
}

/* What getopt_long said was wrong (RET ':' or '?'), as one error line. */
static int refuse_getopt(const struct cmd_def *cmd, const struct opt_union *u, int ret, char **argv)
{
	int i = optopt ? union_index(u, optopt) : -1;
	char label[64], word[3] = { '-', (char)optopt, '\0' };
	const struct opt_def *o;

	if (i < 0)
		return refuse_unknown(cmd, u, optopt ? word : argv[optind - 1]);
	o = u->def[i];
	if ((!cmd || !table_find(cmd->opts, o->name)) && !table_find(common_opts, o->name))
		return refuse_foreign(cmd, o);
	opt_label(o, label, sizeof(label));
	if (ret == ':')
		pr_err("%s needs an argument (%s)\n", label, o->arg);
	else
		pr_err("%s takes no argument\n", label);
	return -1;
}

/* Store the option of union entry I (ARG its argument); mark it SEEN. */
static int take_option(struct cmdline *out, const struct cmd_def *cmd, const struct opt_union *u,
		       int i, const char *arg, bool *seen)
{
	const struct opt_def *o = NULL;

	if (cmd)
		o = table_find(cmd->opts, u->lopts[i].name);
	if (o)
		seen[o - cmd->opts] = true;
	else
		o = table_find(common_opts, u->lopts[i].name);
	if (!o)
		return refuse_foreign(cmd, u->def[i]);
	return o->set(out, o, arg);
}

/*
 * An optional argument is also accepted as the next word when that is a
 * single digit: `-v 4` as well as `-v4` (and criu's `--verbosity 4`).
 */
static const char *optional_arg(int argc, char **argv, const struct option *lo)
{
	const char *next;

	if (optarg || lo->has_arg != optional_argument || optind >= argc)
		return optarg;
	next = argv[optind];
	if (next[0] < '0' || next[0] > '9' || next[1])
		return NULL;
	optind++;
	return next;
}

/* The options of CMD (NULL: only common ones) in argv[1..]; sets *NEXT to the first non-option. */
static int parse_options(int argc, char **argv, const struct cmd_def *cmd, struct cmdline *out,
			 bool *seen, int *next)
{
	struct opt_union u;
	int ret = 0, opt, i;

	union_build(&u, cmd);
	optind = 0; /* glibc: start over (the unit tests parse many times) */
	opterr = 0;
	while (out->action == CMDLINE_RUN &&
	       (opt = getopt_long(argc, argv, u.shorts, u.lopts, NULL)) != -1) {
		i = opt == ':' || opt == '?' ? -1 : union_index(&u, opt);
		if (i < 0) {
			ret = refuse_getopt(cmd, &u, opt, argv);
			break;
		}
		ret = take_option(out, cmd, &u, i, optional_arg(argc, argv, &u.lopts[i]), seen);
		if (ret)
			break;
	}
	*next = optind;
	union_free(&u);
	return ret;
}

/* Each required option of CMD was given. */
static int check_required(const struct cmd_def *cmd, const bool *seen)
{
	const struct opt_def *o;
	char label[64];

	for (o = cmd->opts; o->name; o++) {
		if (!o->required || seen[o - cmd->opts])
			continue;
		if (o->letter)
			snprintf(label, sizeof(label), "-%c %s (--%s)", o->letter, o->arg, o->name);
		else
			snprintf(label, sizeof(label), "--%s %s", o->name, o->arg);
		pr_err("%s needs %s\n", cmd->name, label);
		return -1;
	}
	return 0;
}

/* What is left after the options: nothing, unless the command came too late. */
static int check_extra(const struct cmd_def *cmd, int argc, char **argv, int next)
{
	if (next >= argc)
		return 0;
	if (!cmd && command_find(argv[next]))
		pr_err("the command comes first: stasis %s [OPTIONS]\n", argv[next]);
	else
		pr_err("unexpected argument '%s'\n", argv[next]);
	return -1;
}

int parse_command_line(int argc, char **argv, struct cmdline *out)
{
	const struct cmd_def *cmd = NULL;
	bool *seen = NULL;
	int ret, next;

	memset(out, 0, sizeof(*out));
	out->log_level = LOG_WARN;
	if (argc > 1 && argv[1][0] != '-') {
		cmd = command_find(argv[1]);
		if (!cmd) {
			pr_err("unknown command '%s'; see stasis --help\n", argv[1]);
			return -1;
		}
		out->cmd = cmd->cmd;
		out->cmd_name = cmd->name;
		argv++;
		argc--;
		seen = xzalloc(table_len(cmd->opts) + 1);
	}
	ret = parse_options(argc, argv, cmd, out, seen, &next);
	if (!ret && out->action == CMDLINE_RUN)
		ret = check_extra(cmd, argc, argv, next);
	if (!ret && out->action == CMDLINE_RUN) {
		if (cmd)
			ret = check_required(cmd, seen);
		else
			out->action = CMDLINE_USAGE;
	}
	free(seen);
	if (ret)
		cmdline_free(out);
	return ret;
}

void cmdline_free(struct cmdline *c)
{
	free(c->restore.inherit);
	c->restore.inherit = NULL;
	c->restore.n_inherit = 0;
	free(c->dump.externals);
	c->dump.externals = NULL;
	c->dump.n_externals = 0;
	for (int i = 0; i < c->dump.n_ext_mounts; i++)
		free((char *)c->dump.ext_mounts[i].a);
	for (int i = 0; i < c->restore.n_ext_mounts; i++)
		free((char *)c->restore.ext_mounts[i].a);
	free(c->dump.ext_mounts);
	free(c->restore.ext_mounts);
	c->dump.ext_mounts = c->restore.ext_mounts = NULL;
	c->dump.n_ext_mounts = c->restore.n_ext_mounts = 0;
}

int opt_flag(struct cmdline *c, const struct opt_def *o, const char *arg)
{
	*(bool *)((char *)c + o->off) = true;
	return 0;
}

int opt_string(struct cmdline *c, const struct opt_def *o, const char *arg)
{
	*(const char **)((char *)c + o->off) = arg;
	return 0;
}

int opt_pid(struct cmdline *c, const struct opt_def *o, const char *arg)
{
	char *end;
	long pid;

	errno = 0;
	pid = strtol(arg, &end, 10);
	if (errno || end == arg || *end || pid <= 0 || pid > INT_MAX) {
		pr_err("bad pid '%s'\n", arg);
		return -1;
	}
	*(pid_t *)((char *)c + o->off) = pid;
	return 0;
}

/* "  -t, --tree PID", padded to HELP_COL, then the help, one line per '\n'. */
static void print_opt(FILE *f, const struct opt_def *o)
{
	const char *h = o->help;
	int n;

	if (o->letter)
		n = fprintf(f, "  -%c%s, --%s", o->letter,
			    o->has_arg == optional_argument ? "[N]" : "", o->name);
	else
		n = fprintf(f, "      --%s", o->name);
	if (o->arg)
		n += fprintf(f, " %s", o->arg);
	if (n + 2 > HELP_COL) {
		fputc('\n', f);
		n = 0;
	}
	for (;;) {
		size_t len = strcspn(h, "\n");

		fprintf(f, "%*s%.*s\n", HELP_COL - n, "", (int)len, h);
		if (!h[len])
			break;
		h += len + 1;
		n = 0;
	}
}

static void print_opts(FILE *f, const struct opt_def *t)
{
	for (; t->name; t++)
		print_opt(f, t);
}

void print_usage(FILE *f, enum command cmd)
{
	const struct cmd_def *c;
	const struct opt_def *o;

	for (c = commands; c->name && c->cmd != cmd; c++)
		;
	if (!c->name) {
		fputs("usage: stasis COMMAND [OPTIONS]\n\n"
		      "Checkpoint a running process and restore it later, exactly where it "
		      "stopped.\n\ncommands:\n",
		      f);
		for (c = commands; c->name; c++)
			fprintf(f, "  %-8s %s\n", c->name, c->summary);
	} else {
		fprintf(f, "usage: stasis %s", c->name);
		for (o = c->opts; o->name; o++) {
			if (!o->required)
				continue;
			if (o->letter)
				fprintf(f, " -%c %s", o->letter, o->arg);
			else
				fprintf(f, " --%s %s", o->name, o->arg);
		}
		fprintf(f, " [OPTIONS]\n\n%s", c->about);
		if (c->opts->name) {
			fputs("\noptions:\n", f);
			print_opts(f, c->opts);
		}
	}
	fputs("\ncommon options:\n", f);
	print_opts(f, common_opts);
}
