/*
 * The second driver.  ptrace ties every tracee to one thread, and the
 * main thread traces the whole tree as it is forked; rebuilding is mostly
 * waiting for one task at a time to run a syscall.  With two CPUs, the
 * main thread hands some tasks over to a second thread: it lets such a
 * task return from its raise(SIGSTOP) into an endless pause(), and the
 * second thread seizes it again, rebuilds it pinned to the other CPU, and
 * releases it when told to, while the main thread rebuilds the others.
 *
 * Only tasks whose rebuild does not involve another task go to it: a kind
 * whose rebuild reaches another task (shared anonymous memory created by
 * an earlier task) says so with reaches_other_tasks, and such tasks stay
 * with the main thread, in image order.
 */
#include <pthread.h>
#include <stdlib.h>
#include <sys/ptrace.h>
#include <unistd.h>

#include "log.h"
#include "restore_int.h"
#include "util.h"

#define SECOND_DRIVER_MIN 4 /* fewer tasks than this: not worth a thread */

struct second_driver {
	struct restore *r;
	struct rst_ctx **tasks;
	size_t n;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int state;   /* 0: rebuilding, 1: rebuilt, -1: failed */
	int order;   /* 0: none yet, 1: release, -1: give up */
	int release; /* result of the release */
};

/* No kind says that the task's rebuild reaches another task. */
static bool rebuild_independent(const struct rst_ctx *c)
{
	const struct res_ops *ops;
	size_t i;

	if (c->t->te->zombie)
		return false;
	for_each_res(i,
		     ops) if (ops->reaches_other_tasks && ops->reaches_other_tasks(c)) return false;
	return true;
}

static void second_driver_set(struct second_driver *d, int *field, int value)
{
	pthread_mutex_lock(&d->lock);
	*field = value;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

static int second_driver_wait(struct second_driver *d, int *field)
{
	int v;

	pthread_mutex_lock(&d->lock);
	while (!*field)
		pthread_cond_wait(&d->cond, &d->lock);
	v = *field;
	pthread_mutex_unlock(&d->lock);
	return v;
}

static int second_driver_seize(struct rst_ctx *c)
{
	int status;

	if (ptrace(PTRACE_SEIZE, c->host_pid, 0, PTRACE_O_EXITKILL) ||
	    ptrace(PTRACE_INTERRUPT, c->host_pid, 0, 0)) {
		pr_perror("cannot seize restore child %d again", c->host_pid);
		return -1;
	}
	if (tracee_wait_stop(c->host_pid, &status))
		return -1;
	return transplant_begin(c);
}

static void *second_driver_main(void *arg)
{
	struct second_driver *d = arg;
	size_t i;
	int ret = 0;

	for (i = 0; i < d->n && !ret; i++) {
		struct rst_ctx *c = d->tasks[i];

		pin_to_cpu(last_cpu_of(c->host_pid));
		if (second_driver_seize(c) || transplant(c))
			ret = -1;
	}
	second_driver_set(d, &d->state, ret ? -1 : 1);
	if (ret || second_driver_wait(d, &d->order) < 0)
		return NULL; /* the main thread kills the tree */
	for (i = 0; i < d->n && !d->release; i++)
		d->release = release_task(d->tasks[i]);
	return NULL;
}

/* Hand a parked task over: back to where it stopped, then let it go on into pause(). */
static int second_driver_hand(struct rst_ctx *c)
{
	if (tracee_set_regs(c->rt.pid, &c->rt.regs) || ptrace(PTRACE_DETACH, c->rt.pid, 0, 0)) {
		pr_perror("cannot hand restore child %d over", c->rt.pid);
		return -1;
	}
	c->second = true;
	return 0;
}

/* Start the second driver on the tasks last seen on odd CPUs, if worth it. */
int second_driver_start(struct restore *r)
{
	struct second_driver *d;
	int ret = -1;
	size_t i;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		return 0;
	d = xzalloc(sizeof(*d));
	d->r = r;
	d->tasks = xzalloc(r->tree.n * sizeof(*d->tasks));
	for (i = 0; i < r->tree.n; i++)
		if (rebuild_independent(&r->tree.ctx[i]) &&
		    last_cpu_of(r->tree.ctx[i].host_pid) % 2)
			d->tasks[d->n++] = &r->tree.ctx[i];
	if (d->n < SECOND_DRIVER_MIN) {
		ret = 0;
		goto out_free;
	}
	/* a task handed over and never seized again pauses until kill_tree */
	for (i = 0; i < d->n; i++)
		if (second_driver_hand(d->tasks[i]))
			goto out_free;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cond, NULL);
	if (pthread_create(&d->thread, NULL, second_driver_main, d)) {
		pr_err("cannot start the second restore driver\n");
		pthread_mutex_destroy(&d->lock);
		pthread_cond_destroy(&d->cond);
		goto out_free;
	}
	r->second = d;
	return 0;
out_free:
	free(d->tasks);
	free(d);
	return ret;
}

/* Release (or give up on) the second driver's tasks and end it. */
int second_driver_finish(struct restore *r, bool release)
{
	struct second_driver *d = r->second;
	int ret;

	if (!d)
		return 0;
	second_driver_set(d, &d->order, release ? 1 : -1);
	pthread_join(d->thread, NULL);
	ret = release && d->state > 0 ? d->release : -1;
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->cond);
	free(d->tasks);
	free(d);
	r->second = NULL;
	return release ? ret : 0;
}

/* Wait until the second driver has rebuilt its tasks (or failed: -1). */
int second_driver_wait_rebuilt(struct restore *r)
{
	struct second_driver *d = r->second;

	if (!d)
		return 0;
	if (second_driver_wait(d, &d->state) < 0)
		return -1;
	pr_debug("%zu task(s) rebuilt by the second driver\n", d->n);
	return 0;
}
