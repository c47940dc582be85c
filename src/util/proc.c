/*
 * /proc readers.  smaps is parsed rather than maps because only smaps
 * carries VmFlags (growsdown, locked, madvise state).
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "log.h"
#include "proc.h"
#include "stasis.h"
#include "util.h"

static const struct {
	char code[3];
	unsigned int flag;
} vmflag_codes[] = {
	{ "gd", VMF_GROWSDOWN },  { "lo", VMF_LOCKED },	    { "dc", VMF_DONTCOPY },
	{ "dd", VMF_DONTDUMP },	  { "wf", VMF_WIPEONFORK }, { "hg", VMF_HUGEPAGE },
	{ "nh", VMF_NOHUGEPAGE }, { "mg", VMF_MERGEABLE },  { "nr", VMF_NORESERVE },
	{ "io", VMF_IO },	  { "pf", VMF_PFNMAP },	    { "sh", VMF_SHARED },
	{ "mw", VMF_MAYWRITE },	  { "sr", VMF_SEQ_READ },   { "rr", VMF_RAND_READ },
	{ "dp", VMF_DROPPABLE },  { "sl", VMF_SEALED },
};

static unsigned int parse_vmflags(const char *s)
{
	unsigned int flags = 0;

	while (*s && *s != '\n') {
		size_t i;

		while (*s == ' ')
			s++;
		for (i = 0; i < ARRAY_SIZE(vmflag_codes); i++)
			if (s[0] == vmflag_codes[i].code[0] && s[1] == vmflag_codes[i].code[1])
				flags |= vmflag_codes[i].flag;
		while (*s && *s != ' ' && *s != '\n')
			s++;
	}
	return flags;
}

/* A number in base 16 (or 10) at *p, and past it; false if there is none. */
static bool take_num(const char **p, int base, unsigned long *v)
{
	char *end;

	*v = strtoul(*p, &end, base);
	if (end == *p)
		return false;
	*p = end;
	return true;
}

static bool take_char(const char **p, char c)
{
	if (**p != c)
		return false;
	(*p)++;
	return true;
}

/*
 * "start-end perms pgoff major:minor ino   path": by hand, not sscanf,
 * which took most of the time of a parse (a restore parses the maps of
 * every task three times).
 */
static int parse_vma_line(const char *line, struct proc_vma *v)
{
	const char *p = line, *path, *eol;
	unsigned long maj, min;
	char perms[4];
	int i;

	if (!take_num(&p, 16, &v->start) || !take_char(&p, '-') || !take_num(&p, 16, &v->end) ||
	    !take_char(&p, ' '))
		return -1;
	for (i = 0; i < 4; i++) {
		if (!*p || *p == ' ' || *p == '\n')
			return -1;
		perms[i] = *p++;
	}
	if (!take_char(&p, ' ') || !take_num(&p, 16, &v->pgoff) || !take_char(&p, ' ') ||
	    !take_num(&p, 16, &maj) || !take_char(&p, ':') || !take_num(&p, 16, &min) ||
	    !take_char(&p, ' ') || !take_num(&p, 10, &v->ino))
		return -1;
	v->dev_major = maj;
	v->dev_minor = min;
	v->prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) |
		  (perms[2] == 'x' ? PROT_EXEC : 0);
	v->shared = perms[3] == 's';
	path = p;
	while (*path == ' ')
		path++;
	eol = strchr(path, '\n');
	if (!eol)
		eol = path + strlen(path);
	v->path = strndup(path, eol - path);
	return 0;
}

/* A mapping's first line: "hex-hex " (smaps' other lines are "Key: value"). */
static bool vma_line(const char *line)
{
	const char *p = line;

	while (isxdigit((unsigned char)*p))
		p++;
	return p != line && *p == '-';
}

static int parse_vmas(pid_t pid, const char *file, struct proc_vmas *out)
{
	size_t cap = 64;
	char *buf, *line;

	out->n = 0;
	out->v = NULL;
	buf = read_proc(pid, file, NULL);
	if (!buf) {
		pr_perror("cannot read /proc/%d/%s", pid, file);
		return -1;
	}
	out->v = xzalloc(cap * sizeof(*out->v));
	for (line = buf; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		if (vma_line(line)) {
			if (out->n == cap) {
				cap *= 2;
				out->v = xrealloc(out->v, cap * sizeof(*out->v));
			}
			memset(&out->v[out->n], 0, sizeof(out->v[0]));
			if (parse_vma_line(line, &out->v[out->n])) {
				pr_err("cannot parse /proc/%d/%s line: %.80s\n", pid, file, line);
				goto err;
			}
			out->n++;
		} else if (!strncmp(line, "VmFlags:", 8) && out->n) {
			out->v[out->n - 1].vmflags = parse_vmflags(line + 8);
		}
	}
	free(buf);
	return 0;
err:
	free(buf);
	proc_vmas_free(out);
	return -1;
}

int proc_parse_smaps(pid_t pid, struct proc_vmas *out)
{
	return parse_vmas(pid, "smaps", out);
}

/* Without VmFlags, but much cheaper: the kernel walks no page tables. */
int proc_parse_maps(pid_t pid, struct proc_vmas *out)
{
	return parse_vmas(pid, "maps", out);
}

void proc_vmas_free(struct proc_vmas *vmas)
{
	size_t i;

	for (i = 0; i < vmas->n; i++)
		free(vmas->v[i].path);
	free(vmas->v);
	vmas->v = NULL;
	vmas->n = 0;
}

int proc_parse_stat(pid_t pid, struct proc_stat *st)
{
	char *buf = read_proc(pid, "stat", NULL), *p;
	unsigned long f[52];
	int i = 4; /* next field number: 4 is ppid */

	if (!buf) {
		if (errno == ENOENT || errno == ESRCH)
			pr_err("no process with pid %d\n", pid);
		else
			pr_perror("cannot read /proc/%d/stat", pid);
		return -1;
	}
	/* comm may hold spaces and parentheses: fields resume after the last ')' */
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		goto bad;
	p += 2;
	st->state = *p;
	p += 2;
	memset(f, 0, sizeof(f));
	while (*p && i <= 52) {
		char *end;

		f[i - 1] = strtoull(p, &end, 10);
		if (end == p) {
			if (*p == '-')
				f[i - 1] = strtoll(p, &end, 10);
			if (end == p)
				goto bad;
		}
		p = end;
		while (*p == ' ')
			p++;
		i++;
	}
	/* man 5 proc numbering: field N is f[N-1] */
	st->ppid = f[3];
	st->pgid = f[4];
	st->sid = f[5];
	st->tty_nr = f[6];
	st->tpgid = (int)f[7];
	st->start_code = f[25];
	st->end_code = f[26];
	st->start_stack = f[27];
	st->start_data = f[44];
	st->end_data = f[45];
	st->start_brk = f[46];
	st->arg_start = f[47];
	st->arg_end = f[48];
	st->env_start = f[49];
	st->env_end = f[50];
	st->exit_code = f[51];
	free(buf);
	return 0;
bad:
	pr_err("cannot parse /proc/%d/stat\n", pid);
	free(buf);
	return -1;
}

int proc_parse_fdinfo(pid_t pid, int fd, struct proc_fdinfo *fi)
{
	char name[32], *buf;
	int ret;

	snprintf(name, sizeof(name), "fdinfo/%d", fd);
	buf = read_proc(pid, name, NULL);
	if (!buf) {
		pr_perror("cannot read /proc/%d/fdinfo/%d", pid, fd);
		return -1;
	}
	ret = proc_fdinfo_parse_text(buf, fi);
	free(buf);
	return ret;
}

int proc_fdinfo_parse_text(const char *buf, struct proc_fdinfo *fi)
{
	const char *v;

	memset(fi, 0, sizeof(*fi));
	v = status_field(buf, "pos");
	if (v)
		fi->pos = strtoull(v, NULL, 10);
	v = status_field(buf, "flags");
	if (v)
		fi->flags = strtoul(v, NULL, 8);
	v = status_field(buf, "mnt_id");
	if (v)
		fi->mnt_id = strtoul(v, NULL, 10);
	return 0;
}

/*
 * A path in the /proc of a process or thread of the dumped tree
 * (/proc/PID or below): its PID, else 0.  Restore could not open it (the
 * PID may not exist yet when the file is opened) or would open another
 * process's (a copy beside the original).
 */
pid_t proc_path_of_tree(const struct dump_ctx *ctx, const char *path)
{
	const char *p;
	size_t i, j;
	long pid;

	if (strncmp(path, "/proc/", 6) || !isdigit((unsigned char)path[6]))
		return 0;
	pid = strtol(path + 6, (char **)&p, 10);
	if (*p && *p != '/')
		return 0;
	for (i = 0; i < ctx->ntasks; i++) {
		if (ctx->tasks[i].pid == pid)
			return pid;
		for (j = 0; j < ctx->tasks[i].nth; j++)
			if (ctx->tasks[i].th[j].tid == pid)
				return pid;
	}
	return 0;
}
