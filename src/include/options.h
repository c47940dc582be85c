/*
 * The command line, as a table per command.  parse_command_line() turns
 * argv into a struct cmdline without running anything (so it can be unit
 * tested); main() then dispatches on it.  The tables themselves are in
 * src/cli/commands.c, the parser and the usage printer in src/cli/options.c.
 */
#ifndef STASIS_OPTIONS_H
#define STASIS_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <getopt.h>
#include <stdio.h>

#include "stasis.h"

enum command {
	CMD_NONE,
	CMD_DUMP,
	CMD_RESTORE,
	CMD_SHOW,
	CMD_CHECK,
};

/* What main() does with a parsed command line. */
enum cmdline_action {
	CMDLINE_RUN,	 /* run the command */
	CMDLINE_HELP,	 /* -h: print the usage of the command (or the main one) */
	CMDLINE_VERSION, /* -V */
	CMDLINE_USAGE,	 /* no command at all: the main usage on stderr, exit 1 */
};

struct show_opts {
	const char *dir;
	bool json;
};

struct check_opts {
	bool faults; /* --faults: list the fault points (fault.h) instead */
};

struct cmdline {
	enum cmdline_action action;
	enum command cmd;
	const char *cmd_name; /* NULL without a command */
	struct dump_opts dump;
	struct restore_opts restore;
	struct show_opts show;
	struct check_opts check;
	int log_level;	      /* -v */
	const char *log_file; /* -o */
};

struct opt_def;
/* Store ARG (NULL for an option without one); 0, or -1 after pr_err(). */
typedef int (*opt_setter)(struct cmdline *c, const struct opt_def *o, const char *arg);

/* One option of one command (or a common one). */
struct opt_def {
	const char *name; /* long name, without the dashes */
	int letter;	  /* short option letter, 0 if none */
	int has_arg;	  /* no_argument, required_argument, optional_argument */
	const char *arg;  /* the argument's name in the usage ("DIR") */
	opt_setter set;	  /* opt_flag, opt_string, opt_pid or a special one */
	size_t off;	  /* the field opt_flag & co. set: OPT_FIELD() */
	bool required;	  /* the command refuses to run without it */
	const char *help; /* usage text; each '\n' starts a new line */
};

/* One command and its options (a table ending with an empty entry). */
struct cmd_def {
	const char *name;
	enum command cmd;
	const char *summary; /* one line for `stasis --help` */
	const char *about;   /* the paragraph of `stasis NAME --help` */
	const struct opt_def *opts;
};

/*
 * The offset of FIELD in struct cmdline; the build fails unless FIELD has
 * type TYPE, so a table line cannot point opt_flag at a string.
 */
#define OPT_FIELD(field, type)                                                                     \
	(offsetof(struct cmdline, field) +                                                         \
	 0 * sizeof(                                                                               \
		 char[__builtin_types_compatible_p(__typeof__(((struct cmdline *)0)->field), type) \
			  ? 1                                                                      \
			  : -1]))

/*
 * Table lines.  Adding an option to a command is one line in its table in
 * src/cli/commands.c plus the field it sets (in struct dump_opts,
 * restore_opts or show_opts), e.g. for a new dump flag:
 *	OPT_FLAG("tcp-close", 0, dump.tcp_close, "close established TCP connections"),
 * An option several commands take is one line in each of their tables.
 * OPT_*_REQUIRED lines are options the command refuses to run without.
 */
#define OPT_LINE(n, l, ha, a, fn, o, req, h)                                          \
	{                                                                             \
		.name = n, .letter = l, .has_arg = ha, .arg = a, .set = fn, .off = o, \
		.required = req, .help = h                                            \
	}
#define OPT_FLAG(name, letter, field, help) \
	OPT_LINE(name, letter, no_argument, NULL, opt_flag, OPT_FIELD(field, bool), false, help)
#define OPT_STRING(name, letter, arg, field, help)                                                 \
	OPT_LINE(name, letter, required_argument, arg, opt_string, OPT_FIELD(field, const char *), \
		 false, help)
#define OPT_STRING_REQUIRED(name, letter, arg, field, help)                                        \
	OPT_LINE(name, letter, required_argument, arg, opt_string, OPT_FIELD(field, const char *), \
		 true, help)
#define OPT_PID_REQUIRED(name, letter, arg, field, help) \
	OPT_LINE(name, letter, required_argument, arg, opt_pid, OPT_FIELD(field, pid_t), true, help)
/* An option with a setter of its own (which knows its field). */
#define OPT_SPECIAL(name, letter, has_arg, arg, setter, help) \
	OPT_LINE(name, letter, has_arg, arg, setter, 0, false, help)
#define OPT_END              \
	{                    \
		.name = NULL \
	}

/* The generic setters the table lines use. */
int opt_flag(struct cmdline *c, const struct opt_def *o, const char *arg);
int opt_string(struct cmdline *c, const struct opt_def *o, const char *arg);
int opt_pid(struct cmdline *c, const struct opt_def *o, const char *arg);

/* src/cli/commands.c: every command (ending with an empty entry), the common options. */
extern const struct cmd_def commands[];
extern const struct opt_def common_opts[];

/*
 * Parse argv ("stasis COMMAND [OPTIONS]") into OUT.  Returns 0 (see
 * out->action), or -1 after one error line (pr_err) when the command line
 * is wrong (then nothing needs freeing).  Nothing is run and nothing
 * exits.  cmdline_free() after a successful parse.
 */
int parse_command_line(int argc, char **argv, struct cmdline *out);
void cmdline_free(struct cmdline *c);

/* The usage of one command, or the main one for CMD_NONE. */
void print_usage(FILE *f, enum command cmd);

#endif
