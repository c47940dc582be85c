// SPDX-License-Identifier: MIT
/*
 * piperead - stdin is the read end of a pipe whose writer is outside the
 * tree (the runner).  Blocks in read(0), appends what it reads to a buffer
 * and logs every complete line as "got line N: TEXT".  SIGUSR2 is installed
 * without SA_RESTART so the check interrupts the read.
 *
 * The runner writes "before\n" before the dump; after a restore that gets
 * a new pipe as stdin it writes "after\n".  Check: the buffer holds
 * exactly "before\nafter\n".
 */
#include "scenario.h"

#define EXPECTED "before\nafter\n"

static char buf[4096];
static size_t len;
static int lines;

static void log_new_lines(size_t from)
{
	size_t i, start = from;

	/* find where the first new line starts */
	while (start > 0 && buf[start - 1] != '\n')
		start--;
	for (i = from; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		lines++;
		scn_log("got line %d: %.*s", lines, (int)(i - start), buf + start);
		start = i + 1;
	}
}

int main(int argc, char **argv)
{
	int eof = 0;
	ssize_t n;

	scn_init(argc, argv, 0);
	scn_ready();

	for (;;) {
		if (scn_check) {
			SCN_CHECK(len == strlen(EXPECTED) && !memcmp(buf, EXPECTED, len),
				  "read %zu bytes \"%.*s\", expected \"before\\nafter\\n\"%s", len,
				  (int)len, buf, eof ? " (EOF seen)" : "");
			scn_pass();
		}
		if (eof) {
			pause();
			continue;
		}
		n = read(0, buf + len, sizeof(buf) - 1 - len);
		if (n < 0) {
			if (errno != EINTR)
				scn_fail("read stdin: %s", strerror(errno));
			continue;
		}
		if (n == 0) {
			scn_log("EOF on stdin");
			eof = 1;
			continue;
		}
		len += (size_t)n;
		log_new_lines(len - (size_t)n);
		if (len >= sizeof(buf) - 1)
			scn_fail("too much input");
	}
}
