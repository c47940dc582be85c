/*
 * Inside the terminal kinds: tty.c holds the pty pairs and their fds,
 * tty_job.c sessions and job control; this is what they share.
 */
#ifndef STASIS_TTY_H
#define STASIS_TTY_H

#include "files.h"
#include "proc.h"

struct tty_seen {
	uint32_t index;
	pid_t pid; /* a task holding the master, and its fd */
	int fd;
	uint32_t sid; /* the session it is the controlling terminal of */
	int fg_pgrp;
	bool saved;
	dev_t devpts; /* the devpts instance of the pair (its slave's st_dev) */
	char *ptmx;   /* the master's ptmx node, as the tree named it */
};

/* tty_res's state for one dump: the pty masters of the tree */
struct tty_dump {
	struct tty_seen *v;
	size_t n;
};

/* tty_res's state for one image: its pty pairs */
struct tty_image {
	TtyEntry **v;
	size_t n;
};

extern const struct res_ops tty_res;

/* The tty_entry of pty index in the image, or NULL */
const TtyEntry *tty_pair(struct image *img, uint32_t index);
bool tty_is_pty_slave(const struct stat *st);
uint32_t tty_slave_index(dev_t rdev);
/* Dump: the pty master of index in the tree (after the scan), is pid in the tree */
struct tty_seen *tty_find(struct dump_ctx *ctx, uint32_t index);
int tty_scan_once(struct dump_ctx *ctx);
/* The controlling terminal of pid as a pty index; -1: none, -2: not a pty. */
long tty_ctty_index(pid_t pid, struct proc_stat *st);
void tty_dump_fini(struct dump_ctx *ctx, void *state);
void tty_image_fini(struct image *img, void *state);
/* Restore: the master of pty index in this task (opened here if need be), a slave fd */
int tty_master_here(struct rst_ctx *c, uint32_t index);
int tty_slave_peer(int master, int flags);
int tty_open(struct rst_ctx *c, const FileEntry *fe);

#endif
