/*
 * linjail-launcher: the commands' entry point, built by tools/mklaunchers.sh
 * with the tool's name, the interpreter and the source directory compiled in.
 *
 * Why not a script: CPython aborts before any of our code runs when standard
 * input is a directory ("init_sys_streams"), while SPEC §4 wants a one-line
 * refusal; a shell launcher would add PWD to the environment the jail gets;
 * and `python -I -S` skips site, which we do not need (~10 ms).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef TOOL
#error TOOL, PYTHON and SRC must be defined
#endif
#ifndef MODULE
#define MODULE TOOL     /* the module under linjail.cli: TOOL with - as _ */
#endif

/* one line A B C on stderr, waiting for a full non-blocking pipe (fprintf
 * dropped the line on EAGAIN: status 1 with nothing said) */
static void say(const char *a, const char *b, const char *c)
{
	char buf[4096];
	size_t len, off = 0;
	int n = snprintf(buf, sizeof buf, "%s%s%s\n", a, b, c);
	if (n <= 0)
		return;
	len = (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1;
	buf[len - 1] = '\n';
	while (off < len) {
		ssize_t w = write(2, buf + off, len - off);
		if (w > 0) {
			off += (size_t)w;
		} else if (w < 0 && errno == EAGAIN) {
			struct pollfd p = { 2, POLLOUT, 0 };
			(void)poll(&p, 1, -1);
		} else if (!(w < 0 && errno == EINTR)) {
			break;
		}
	}
}

#include "jexec_fast.c"

int main(int argc, char **argv)
{
	static const char *what[] = {
		"input is a directory: refusing to pass it into a jail",
		"output is a directory: refusing to pass it into a jail",
		"error is a directory: refusing to pass it into a jail",
	};
	char **args = calloc((size_t)argc + 6, sizeof *args);
	struct stat st;
	sigset_t intr;
	int fd, i;

	for (fd = 0; fd < 3; fd++) {
		if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
			say(TOOL ": standard ", what[fd], "");
			return 1;
		}
	}
	if (args == NULL)
		return 1;
	/*
	 * Ctrl-C while CPython starts is a "Fatal Python error:
	 * init_sys_streams" or a KeyboardInterrupt traceback from an import:
	 * the interpreter starts with SIGINT blocked (the mask survives execv),
	 * and cli/_main.py run() unblocks it inside its handler, where a
	 * pending one ends the command quietly with status 130.
	 */
	sigemptyset(&intr);
	sigaddset(&intr, SIGINT);
	if (strcmp(TOOL, "jexec") == 0) {
		/*
		 * jexec stands for its command: a signal that comes before the
		 * command's PID is known waits (blocked, on both paths) and is
		 * then passed on, instead of ending jexec with the command
		 * killed behind it (relay.FORWARDED, fast_jexec's forwarded[])
		 */
		sigprocmask(SIG_SETMASK, NULL, &caller_mask);
		for (i = 0; i < (int)(sizeof forwarded / sizeof forwarded[0]); i++)
			sigaddset(&intr, forwarded[i]);
	}
	sigprocmask(SIG_BLOCK, &intr, NULL);
	if (strcmp(TOOL, "jexec") == 0) {
		/* the common case in C; anything else is the interpreter's */
		int status = fast_jexec(argc, argv);
		if (status != FAST_NOT_TAKEN)
			return status;
	}
	/* argv[0] must be the interpreter: CPython finds its stdlib from it */
	args[0] = (char *)PYTHON;
	args[1] = "-I";
	args[2] = "-S";
	args[3] = "-c";
	/* os._exit after flushing: interpreter shutdown costs ~17 ms and we
	 * register no atexit handler */
	args[4] = "import sys, os; sys.path.insert(0, '" SRC "'); "
		  "from linjail.cli._main import finish; "
		  "from linjail.cli." MODULE " import main; finish(main)";
	for (i = 1; i < argc; i++)
		args[4 + i] = argv[i];
	execv(PYTHON, args);
	sigprocmask(SIG_UNBLOCK, &intr, NULL);
	say(TOOL ": ", PYTHON, ": cannot run the interpreter");
	return 1;
}
