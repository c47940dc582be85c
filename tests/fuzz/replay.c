/*
 * Replay driver for the image fuzz target without libFuzzer: runs every
 * file named on the command line (directories: every file in them) through
 * LLVMFuzzerTestOneInput once.  Built with gcc and ASan+UBSan by
 * `make check`: a crash, a sanitizer report or a leak fails it, and an
 * input that takes more than REPLAY_TIMEOUT seconds is killed by SIGALRM.
 */
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#define REPLAY_TIMEOUT 10

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *current;

static void on_alarm(int sig)
{
	static const char msg[] = "replay: input hangs: ";

	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0 ||
	    write(STDERR_FILENO, current, strlen(current)) < 0 || write(STDERR_FILENO, "\n", 1))
		_exit(3);
	_exit(3);
}

static int replay_file(const char *path)
{
	size_t len;
	char *buf = read_file(path, &len);

	if (!buf) {
		fprintf(stderr, "replay: cannot read %s\n", path);
		return -1;
	}
	current = path;
	alarm(REPLAY_TIMEOUT);
	LLVMFuzzerTestOneInput((const uint8_t *)buf, len);
	alarm(0);
	free(buf);
	return 0;
}

static int replay_dir(const char *path, int *n)
{
	struct dirent **names;
	int i, k = scandir(path, &names, NULL, alphasort), ret = 0;

	if (k < 0)
		return replay_file(path) ? -1 : (++*n, 0);
	for (i = 0; i < k; i++) {
		char *p = xsprintf("%s/%s", path, names[i]->d_name);

		if (names[i]->d_name[0] != '.' && !ret) {
			ret = replay_file(p);
			++*n;
		}
		free(p);
		free(names[i]);
	}
	free(names);
	return ret;
}

int main(int argc, char **argv)
{
	int i, n = 0;

	signal(SIGALRM, on_alarm);
	for (i = 1; i < argc; i++)
		if (replay_dir(argv[i], &n))
			return 1;
	fprintf(stderr, "replay: %d inputs, none crashed or hung\n", n);
	return 0;
}
