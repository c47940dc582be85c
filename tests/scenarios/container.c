/*
 * container: the init of a container started as
 *   unshare --fork --pid --mount --net --ipc --uts [--user --map-root-user]
 * (tests/suites/ns12c.sh).  It builds, inside its namespaces:
 *   - hostname "stasis-ct";
 *   - every mount private; a tmpfs at WORKDIR/ct/t (mode 0750) with a file
 *     and a directory with a file; a bind of the host directory
 *     WORKDIR/ct/src at WORKDIR/ct/b;
 *   - SysV: a shared memory segment attached with a pattern, a set of
 *     three semaphores (values 3 1 4), a message queue with two messages;
 *   - a POSIX message queue /ctq with messages of priority 2 and 7;
 *   - CT_KIDS more processes (default 1) that sleep, each with the
 *     segment attached;
 * then writes WORKDIR/unshared and waits for WORKDIR/netready: the test
 * has moved the inner end of a veth in (ctv0, 10.199.81.2/30, route to
 * 10.199.82.0/24 via .1, the host end .1).
 *
 * With CT_PLAIN set (bench/container.sh: the same tree without
 * namespaces) it does only the IPC part and the children, and checks only
 * those.
 *
 * Check (from inside): hostname, the tmpfs's files and mode, the bind's
 * host bytes, the segment's pattern, semaphore values, the messages of
 * both queues in order, ctv0 up with its address and the route, a UDP
 * datagram to the host end's address goes out (a route exists); the
 * children are there.
 */
#include "scenario.h"

#include <arpa/inet.h>
#include <mqueue.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/ipc.h>
#include <sys/mount.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define SHM_SIZE (64 * 1024)

static int shmid, semid, msqid;
static unsigned char *seg;
static mqd_t mq;
static pid_t kids[8];
static int nkids = 1;

static void must(int bad, const char *what)
{
	if (bad)
		scn_fail("%s: %s", what, strerror(errno));
}

static void put(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	must(fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) || close(fd), path);
}

static int has(const char *path, const char *text)
{
	char buf[256];

	return scn_read_small(path, buf, sizeof(buf)) >= 0 && !strcmp(buf, text);
}

static void setup(void)
{
	struct mq_attr a = { .mq_maxmsg = 4, .mq_msgsize = 64 };
	struct {
		long mtype;
		char text[32];
	} mb;
	unsigned short vals[3] = { 3, 1, 4 };
	size_t i;

	if (getenv("CT_PLAIN"))
		goto ipc;
	must(sethostname("stasis-ct", 9), "sethostname");
	must(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), "private /");
	/* CT_BIND_FIRST: the bind of the host directory is its first mount */
	if (getenv("CT_BIND_FIRST"))
		must(mount("ct/src", "ct/b", NULL, MS_BIND, NULL), "bind ct/b");
	must(mount("ct-tmp", "ct/t", "tmpfs", 0, "size=2m,mode=0750"), "mount ct/t");
	put("ct/t/file", "container file\n", 0640);
	must(mkdir("ct/t/d", 0700), "mkdir ct/t/d");
	put("ct/t/d/deep", "deep\n", 0600);
	if (!getenv("CT_BIND_FIRST"))
		must(mount("ct/src", "ct/b", NULL, MS_BIND, NULL), "bind ct/b");
	/* CT_SHARED: ct/t shared with a peer bind at ct/p, a tmpfs on ct/t/m (so on ct/p/m too) */
	if (getenv("CT_SHARED")) {
		must(mkdir("ct/p", 0755) && errno != EEXIST, "mkdir ct/p");
		must(mkdir("ct/t/m", 0755), "mkdir ct/t/m");
		must(mount(NULL, "ct/t", NULL, MS_SHARED, NULL), "make ct/t shared");
		must(mount("ct/t", "ct/p", NULL, MS_BIND, NULL), "bind ct/p");
		must(mount("ct-m", "ct/t/m", "tmpfs", 0, "size=64k"), "mount ct/t/m");
	}
	for (i = 0; getenv("CT_MOUNTS") && i < (size_t)atoi(getenv("CT_MOUNTS")); i++) {
		char mp[32];

		snprintf(mp, sizeof(mp), "ct/m%zu", i);
		mkdir(mp, 0755);
		must(mount("ct-more", mp, "tmpfs", 0, "size=64k"), mp);
	}
ipc:

	shmid = shmget(IPC_PRIVATE, SHM_SIZE, 0600);
	must(shmid < 0, "shmget");
	seg = shmat(shmid, NULL, 0);
	must(seg == (void *)-1, "shmat");
	for (i = 0; i < SHM_SIZE; i++)
		seg[i] = (unsigned char)(i * 7 + 1);
	semid = semget(IPC_PRIVATE, 3, 0600);
	must(semid < 0 || semctl(semid, 0, SETALL, vals), "semget");
	msqid = msgget(IPC_PRIVATE, 0600);
	must(msqid < 0, "msgget");
	mb.mtype = 5;
	strcpy(mb.text, "sysv one");
	must(msgsnd(msqid, &mb, 9, 0), "msgsnd");
	mb.mtype = 6;
	strcpy(mb.text, "sysv two");
	must(msgsnd(msqid, &mb, 9, 0), "msgsnd");

	mq = mq_open("/ctq", O_CREAT | O_EXCL | O_RDWR, 0640, &a);
	must(mq < 0, "mq_open");
	must(mq_send(mq, "low", 4, 2) || mq_send(mq, "high", 5, 7), "mq_send");
	{
		char ids[96]; /* for whoever cleans up after a tree in our namespace */

		snprintf(ids, sizeof(ids), "%d %d %d\n", shmid, semid, msqid);
		scn_write_file("ipcids", ids);
	}
}

static void check_ipc(void)
{
	struct {
		long mtype;
		char text[32];
	} mb;
	unsigned short vals[3] = { 0 };
	unsigned int prio;
	char buf[64];
	size_t i;
	ssize_t n;

	for (i = 0; i < SHM_SIZE && seg[i] == (unsigned char)(i * 7 + 1); i++)
		;
	SCN_CHECK(i == SHM_SIZE, "the segment differs at byte %zu", i);
	SCN_CHECK(!semctl(semid, 0, GETALL, vals) && vals[0] == 3 && vals[1] == 1 && vals[2] == 4,
		  "semaphores %u %u %u", vals[0], vals[1], vals[2]);
	n = msgrcv(msqid, &mb, sizeof(mb.text), 0, IPC_NOWAIT);
	SCN_CHECK(n == 9 && mb.mtype == 5 && !strcmp(mb.text, "sysv one"), "SysV message 1");
	n = msgrcv(msqid, &mb, sizeof(mb.text), 0, IPC_NOWAIT);
	SCN_CHECK(n == 9 && mb.mtype == 6 && !strcmp(mb.text, "sysv two"), "SysV message 2");
	n = mq_receive(mq, buf, sizeof(buf), &prio);
	SCN_CHECK(n == 5 && prio == 7 && !strcmp(buf, "high"), "mqueue message 1 (%zd)", n);
	n = mq_receive(mq, buf, sizeof(buf), &prio);
	SCN_CHECK(n == 4 && prio == 2 && !strcmp(buf, "low"), "mqueue message 2 (%zd)", n);
}

static void check_net(void)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(9) };
	struct ifreq ifr = { 0 };
	char route[4096];
	int s = socket(AF_INET, SOCK_DGRAM, 0);

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "ctv0");
	SCN_CHECK(s >= 0 && !ioctl(s, SIOCGIFFLAGS, &ifr) && (ifr.ifr_flags & IFF_UP),
		  "ctv0 is missing or down");
	SCN_CHECK(!ioctl(s, SIOCGIFADDR, &ifr) &&
		      ((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr.s_addr ==
			  inet_addr("10.199.81.2"),
		  "ctv0 lost its address");
	/* 10.199.82.0 via 10.199.81.1, as /proc/net/route spells them */
	SCN_CHECK(scn_read_small("/proc/net/route", route, sizeof(route)) >= 0 &&
		      strstr(route, "ctv0\t0052C70A\t0151C70A"),
		  "the route to 10.199.82.0/24 is gone");
	to.sin_addr.s_addr = inet_addr("10.199.82.1");
	SCN_CHECK(sendto(s, "x", 1, 0, (struct sockaddr *)&to, sizeof(to)) == 1,
		  "no way to 10.199.82.1: %s", strerror(errno));
	close(s);
}

int main(int argc, char **argv)
{
	char host[64] = "";
	struct stat st;
	int i;

	scn_init(argc, argv, 0);
	setsid(); /* a container's init leads its session */
	scn_proc_view = 1;
	if (getenv("CT_KIDS"))
		nkids = atoi(getenv("CT_KIDS"));
	if (nkids < 0 || nkids > 8)
		nkids = 1;
	setup();
	for (i = 0; i < nkids; i++) {
		kids[i] = fork();
		if (kids[i] == 0) {
			for (;;)
				pause();
		}
		must(kids[i] < 0, "fork");
	}
	{
		char me[32]; /* our PID as the test sees it: where it builds the veth */

		snprintf(me, sizeof(me), "%d\n", (int)scn_seen_pid());
		scn_write_file("unshared", me);
	}
	for (i = 0; !getenv("CT_PLAIN") && i < 1000 && access("netready", F_OK); i++)
		scn_msleep(10);
	if (!getenv("CT_PLAIN") && access("netready", F_OK))
		scn_fail("the test did not build the network");
	scn_ready_then_wait();
	if (getenv("CT_PLAIN"))
		goto ipc_check;
	SCN_CHECK(!gethostname(host, sizeof(host)) && !strcmp(host, "stasis-ct"), "hostname %s",
		  host);
	SCN_CHECK(has("ct/t/file", "container file") && has("ct/t/d/deep", "deep"),
		  "the tmpfs lost its files");
	SCN_CHECK(!stat("ct/t", &st) && (st.st_mode & 07777) == 0750, "ct/t mode %o",
		  st.st_mode & 07777);
	SCN_CHECK(has("ct/b/f", "host"), "the bind mount lost the host's bytes");
	check_net();
ipc_check:
	check_ipc();
	for (i = 0; i < nkids; i++)
		SCN_CHECK(kill(kids[i], 0) == 0, "child %d is gone", (int)kids[i]);
	for (i = 0; i < nkids; i++)
		kill(kids[i], SIGKILL);
	scn_pass();
}
