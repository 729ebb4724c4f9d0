/*
 * hog: takes one resource inside a jail, with its own hard bound, and says
 * how far it got: "WHAT COUNT ERRNO-NAME" (ERRNO-NAME "ok" when the bound
 * was reached first).  Built statically by tests/e2e/test_rctl.py.
 *
 *   hog fork N       fork up to N children (each sleeps until killed), then kill them
 *   hog mem MIB [S]  allocate and touch up to MIB MiB, hold S seconds
 *   hog busy S       spin for S seconds of wall time
 *   hog files N      open /dev/null up to N times
 *   hog ptys N       open /dev/pts/ptmx up to N times
 *   hog shm N        shmget(IPC_PRIVATE) up to N segments, then remove them
 *
 * Every bound is checked by the caller too: N <= 400, MIB <= 512, S <= 30.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *ename(int e)
{
	switch (e) {
	case 0: return "ok";
	case EAGAIN: return "EAGAIN";
	case ENOMEM: return "ENOMEM";
	case EMFILE: return "EMFILE";
	case ENFILE: return "ENFILE";
	case ENOSPC: return "ENOSPC";
	case ENOSYS: return "ENOSYS";
	case EPERM: return "EPERM";
	case EACCES: return "EACCES";
	case ENOENT: return "ENOENT";
	case EIO: return "EIO";
	default: return "other";
	}
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long bounded(const char *s, long max)
{
	long v = s ? atol(s) : 0;
	if (v < 0 || v > max) {
		fprintf(stderr, "hog: %s is over the bound %ld\n", s, max);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "";
	int err = 0;
	long i = 0;

	if (!strcmp(what, "fork")) {
		long n = bounded(argv[2], 400);
		pid_t kids[400];
		for (i = 0; i < n; i++) {
			pid_t p = fork();
			if (p < 0) { err = errno; break; }
			if (p == 0) { alarm(30); pause(); _exit(0); }
			kids[i] = p;
		}
		printf("fork %ld %s\n", i, ename(err));
		fflush(stdout);
		for (long k = 0; k < i; k++)
			kill(kids[k], SIGKILL);
		while (wait(NULL) > 0)
			;
	} else if (!strcmp(what, "mem")) {
		long mib = bounded(argv[2], 512);
		long hold = argc > 3 ? bounded(argv[3], 30) : 0;
		for (i = 0; i < mib; i++) {
			char *p = malloc(1 << 20);
			if (!p) { err = errno; break; }
			memset(p, 1, 1 << 20);
		}
		printf("mem %ld %s\n", i, ename(err));
		fflush(stdout);
		sleep(hold);
	} else if (!strcmp(what, "busy")) {
		double end = now() + bounded(argv[2], 30);
		volatile unsigned long x = 0;
		while (now() < end)
			for (int k = 0; k < 100000; k++)
				x++;
		printf("busy done\n");
	} else if (!strcmp(what, "files")) {
		long n = bounded(argv[2], 400);
		for (i = 0; i < n; i++)
			if (open("/dev/null", O_RDONLY) < 0) { err = errno; break; }
		printf("files %ld %s\n", i, ename(err));
	} else if (!strcmp(what, "ptys")) {
		long n = bounded(argv[2], 400);
		for (i = 0; i < n; i++)
			if (open("/dev/pts/ptmx", O_RDWR | O_NOCTTY) < 0) { err = errno; break; }
		printf("ptys %ld %s\n", i, ename(err));
	} else if (!strcmp(what, "shm")) {
		long n = bounded(argv[2], 400);
		int ids[400];
		for (i = 0; i < n; i++) {
			ids[i] = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
			if (ids[i] < 0) { err = errno; break; }
		}
		printf("shm %ld %s\n", i, ename(err));
		for (long k = 0; k < i; k++)
			shmctl(ids[k], IPC_RMID, NULL);
	} else {
		fprintf(stderr, "usage: hog fork|mem|busy|files|ptys|shm N\n");
		return 2;
	}
	return 0;
}
