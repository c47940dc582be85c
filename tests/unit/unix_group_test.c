/*
 * Unit tests of the unix socket peer grouping (src/res/unix_scan.c): which
 * sockets of the tree are rebuilt together by one task.  The host's
 * sockets are made up in memory, as sock_diag would list them; no root,
 * no socket is created.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "unix_sk.h"
#include "util.h"
#include "unit.h"

static struct unix_table tab;

#define MAX_SOCKETS 64 /* allocated once: the pointers sk() returns stay valid */

/* Add a socket (in inode order, as unix_find wants them). */
static struct usk *sk(uint32_t ino, int type, int state, uint32_t peer, bool in_tree,
		      const char *name)
{
	struct usk *s;

	if (!tab.sk)
		tab.sk = xzalloc(MAX_SOCKETS * sizeof(*tab.sk));
	if (tab.n == MAX_SOCKETS)
		abort();
	s = &tab.sk[tab.n++];
	memset(s, 0, sizeof(*s));
	s->ino = ino;
	s->type = type;
	s->state = state;
	s->peer = peer;
	s->in_tree = in_tree;
	if (name) {
		/* abstract: a leading NUL */
		s->namelen = 1 + strlen(name);
		memcpy(s->name + 1, name, strlen(name));
	}
	return s;
}

static uint64_t group(uint32_t ino)
{
	return unix_group_of(&tab, unix_find(&tab, ino));
}

/* A datagram from the socket named name, waiting in s's queue. */
static void queued_from(struct usk *s, const char *name)
{
	UnixMsg *m = xmalloc(sizeof(*m));

	unix_msg__init(m);
	m->has_addr = true;
	m->addr.len = 1 + strlen(name);
	m->addr.data = xzalloc(m->addr.len);
	memcpy(m->addr.data + 1, name, strlen(name));
	s->pre = xmalloc(sizeof(*s->pre));
	unix_sk_entry__init(s->pre);
	s->pre->queue = xmalloc(sizeof(*s->pre->queue));
	s->pre->queue[0] = m;
	s->pre->n_queue = 1;
}

static void build(void)
{
	struct usk *l, *d;

	memset(&tab, 0, sizeof(tab));
	/* a connected pair */
	sk(10, SOCK_STREAM, UNIX_ESTABLISHED, 11, true, NULL);
	sk(11, SOCK_STREAM, UNIX_ESTABLISHED, 10, true, NULL);
	/* a listener, a connection it accepted (and its client), one pending in its queue */
	l = sk(20, SOCK_STREAM, UNIX_LISTEN, 0, true, "srv");
	sk(21, SOCK_STREAM, UNIX_ESTABLISHED, 22, true, "srv");
	sk(22, SOCK_STREAM, UNIX_ESTABLISHED, 21, true, NULL);
	sk(31, SOCK_STREAM, UNIX_ESTABLISHED, 0, true, NULL);
	l->icons = xmalloc(sizeof(*l->icons));
	l->icons[0] = 31;
	l->nicons = 1;
	/* a datagram receiver with a datagram from a named socket of the tree */
	d = sk(40, SOCK_DGRAM, UNIX_CLOSE, 0, true, NULL);
	sk(41, SOCK_DGRAM, UNIX_CLOSE, 0, true, "sender");
	queued_from(d, "sender");
	/* alone */
	sk(50, SOCK_DGRAM, UNIX_CLOSE, 0, true, NULL);
	/* connected to a socket outside the tree, and a third one outside connected to it */
	sk(60, SOCK_STREAM, UNIX_ESTABLISHED, 61, true, NULL);
	sk(61, SOCK_STREAM, UNIX_ESTABLISHED, 60, false, NULL);
	sk(62, SOCK_DGRAM, UNIX_ESTABLISHED, 50, false, NULL);
	unix_make_groups(&tab);
}

static void test_pair(void)
{
	CHECK(group(10) == group(11), "a connected pair in two groups");
	CHECK(group(10) != group(20) && group(10) != group(40) && group(10) != group(50),
	      "a pair joined with unrelated sockets");
	printf("  ok a connected pair is one group\n");
}

static void test_listener(void)
{
	CHECK(group(21) == group(20), "an accepted connection not with its listener");
	CHECK(group(22) == group(20), "the client of an accepted connection not with it");
	CHECK(group(31) == group(20), "a pending connection not with its listener");
	CHECK(unix_pending_at(&tab, unix_find(&tab, 31)) == unix_find(&tab, 20),
	      "a pending connection does not know its listener");
	CHECK(unix_accepted_from(&tab, unix_find(&tab, 21)) == unix_find(&tab, 20),
	      "an accepted connection does not know its listener");
	printf("  ok a listener with its accepted and pending connections is one group\n");
}

static void test_senders(void)
{
	CHECK(group(40) == group(41), "a datagram's named sender not with its receiver");
	CHECK(group(50) == 50, "a lone socket not its own group");
	CHECK(group(60) == 60 && group(60) != group(10), "a socket connected outside joined");
	CHECK(unix_find(&tab, 50)->outsider == 62,
	      "a socket outside the tree connected to 50 is not noticed");
	printf("  ok datagram senders join, lone and outside-connected sockets stay alone\n");
}

int main(void)
{
	log_init(LOG_MSG, "/dev/null");
	build();
	test_pair();
	test_listener();
	test_senders();
	return failed ? 1 : 0;
}
