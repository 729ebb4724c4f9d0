/*
 * linjail-reaper: PID 1 of a jail (SPEC §1, §7 "Processes").
 *
 * The Python launcher sets the jail up (namespaces, mounts, pivot_root,
 * capabilities, seccomp) and then execs this program from a sealed memfd, so
 * no host binary is reachable through /proc/1/exe.  It is built statically
 * with musl so that it needs nothing from the jail's root and costs a few
 * pages per jail; a Python PID 1 would cost ~2.3 MiB of private memory.
 *
 *   linjail-reaper STATUS_FD GO_FD UID GID GROUPS -- command [args...]
 *
 * GO_FD: it waits for one byte ('g') from the launcher (which prints the JID
 * for `jail -i` first); EOF without a byte means the launcher died, and the
 * jail is abandoned before anything runs.
 * Then it forks the command (setsid, controlling tty if stdin is one,
 * setgroups/setgid/setuid when UID is not -1, execv without PATH search),
 * closes its own stdio (so nothing in the jail holds the caller's pipes or
 * terminal through PID 1), and reaps every process of the jail.
 * When the command ends, its wait status goes to STATUS_FD as 4 bytes
 * (native int) and the descriptor is closed.  Signals that reach PID 1 from
 * the host (INT TERM HUP QUIT USR1 USR2 WINCH CONT TSTP) are passed to the
 * command while it lives.  When the last process of the jail is gone (its
 * own children, and processes joined with jexec), it exits, which ends the
 * jail: the kernel tears the namespaces down.
 *
 *   linjail-reaper STATUS_FD GO_FD UID GID GROUPS [-p] -- [command [args...]]
 *
 * -p (FreeBSD's `persist`): the jail stays when no process is left; without
 * a command PID 1 only reaps.  Signal 40 from outside the jail (si_pid 0: the
 * sender is not in this PID namespace) turns persist on, 41 turns it off;
 * the same signals from inside the jail are ignored.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int parse_int(const char *s, long *out)
{
	char *end;
	errno = 0;
	*out = strtol(s, &end, 10);
	return (errno || *s == '\0' || *end != '\0') ? -1 : 0;
}

static int parse_groups(const char *s, gid_t *groups, int max)
{
	int n = 0;
	const char *p = s;
	if (*p == '\0' || strcmp(p, "-") == 0)
		return 0;
	while (*p && n < max) {
		char *end;
		groups[n++] = (gid_t)strtoul(p, &end, 10);
		if (*end == ',')
			end++;
		else if (*end != '\0')
			return -1;
		p = end;
	}
	return n;
}

extern char **environ;

/* FreeBSD's persist, switched from the host (jail -m persist / nopersist):
 * real-time signal numbers, above musl's and glibc's reserved ones */
#define SIG_PERSIST_ON 40
#define SIG_PERSIST_OFF 41

/* The command does not inherit PID 1's LINJAIL_* facts (SPEC §5: they stay
 * readable in /proc/1/environ). */
static void strip_linjail_env(void)
{
	char **src = environ, **dst = environ;
	for (; *src; src++)
		if (strncmp(*src, "LINJAIL_", 8) != 0)
			*dst++ = *src;
	*dst = NULL;
}

static void put(const char *a, const char *b, const char *c)
{
	/* one line on stderr without stdio buffering: jail: execv: CMD: text;
	 * cut short it still ends the line, and a non-blocking stderr that is
	 * full is waited for (the message was lost: issue 16) */
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

int main(int argc, char **argv)
{
	long status_fd, go_fd, uid, gid;
	gid_t groups[256];
	int ngroups;
	sigset_t all, old;
	pid_t cmd = -1;
	int have_cmd = 1, exit_code = 0, idle = 0, persist = 0, cmdi = 7;
	char go = 0;

	if (argc > 6 && strcmp(argv[6], "-p") == 0) {
		persist = 1;
		cmdi = 8;
	}
	if (argc < cmdi || strcmp(argv[cmdi - 1], "--") != 0 ||
	    parse_int(argv[1], &status_fd) || parse_int(argv[2], &go_fd) ||
	    parse_int(argv[3], &uid) || parse_int(argv[4], &gid) ||
	    (ngroups = parse_groups(argv[5], groups, 256)) < 0) {
		put("linjail-reaper: ", "bad arguments", "");
		return 111;
	}
	/* PID 1 stays dumpable, like every process of the jail: jailed root may
	 * read /proc/1/environ (LINJAIL_JAILED, LINJAIL_KNOBS: SPEC §5).  It holds
	 * nothing of the host: its exe is a sealed memfd, its descriptors two
	 * pipes to the launcher. */

	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);

	while (read((int)go_fd, &go, 1) < 0 && errno == EINTR)
		;
	/* the byte was read or the launcher is gone: either way, done with it */
	if (go != 'g')
		return 111;
	close((int)go_fd);

	if (argc == cmdi) {
		/* no command: PID 1 only reaps (the jail persists until told) */
		have_cmd = 0;
		idle = 1;
		close((int)status_fd);
		close(0);
		close(1);
		close(2);
		goto reap;
	}
	cmd = fork();
	if (cmd < 0) {
		put("jail: fork: ", strerror(errno), "");
		return 1;
	}
	if (cmd == 0) {
		struct sigaction dfl;
		int sig;
		close((int)status_fd);
		memset(&dfl, 0, sizeof dfl);
		dfl.sa_handler = SIG_DFL;
		for (sig = 1; sig < NSIG; sig++)
			sigaction(sig, &dfl, NULL);
		/* the launcher blocks SIGINT while it makes the jail (a Ctrl-C
		 * then abandons it, lifecycle/start.py): not the command's */
		sigdelset(&old, SIGINT);
		sigprocmask(SIG_SETMASK, &old, NULL);
		setsid();
		if (isatty(0))
			ioctl(0, TIOCSCTTY, 0);
		if (uid >= 0) {
			if (setgroups((size_t)ngroups, groups) || setgid((gid_t)gid) ||
			    setuid((uid_t)uid)) {
				put("jail: setusercontext: ", strerror(errno), "");
				_exit(1);
			}
		}
		strip_linjail_env();
		execv(argv[cmdi], argv + cmdi);
		{
			int e = errno;
			char head[4200];
			snprintf(head, sizeof head, "jail: execv: %s: ", argv[cmdi]);
			put(head, strerror(e), "");
		}
		_exit(1);
	}

	/* PID 1 keeps no descriptor of the caller once the command runs. */
	close(0);
	close(1);
	close(2);

reap:
	for (;;) {
		siginfo_t si;
		int sig;
		if (idle) {
			/* No child of ours is left, but processes joined with jexec
			 * (whose parent is outside the jail) may be: they end the jail
			 * when they end, and nothing tells PID 1, so look twice a
			 * second.  kill(-1, 0) from PID 1 reaches every other process
			 * of the PID namespace; ESRCH means there is none. */
			struct timespec half = { 0, 500000000L };
			if (!persist && kill(-1, 0) < 0 && errno == ESRCH)
				return exit_code;
			sig = sigtimedwait(&all, &si, &half);
		} else {
			sig = sigwaitinfo(&all, &si);
		}
		if (sig < 0)
			continue;
		if ((sig == SIG_PERSIST_ON || sig == SIG_PERSIST_OFF) && si.si_pid == 0) {
			persist = sig == SIG_PERSIST_ON;
			continue;
		}
		if (sig != SIGCHLD) {
			if (have_cmd)
				kill(cmd, sig);
			continue;
		}
		for (;;) {
			int st;
			pid_t p = waitpid(-1, &st, WNOHANG);
			if (p == 0)
				break;
			if (p < 0) {
				if (errno == EINTR)
					continue;
				/* ECHILD: none of our children is left */
				idle = 1;
				break;
			}
			idle = 0;
			if (p == cmd && have_cmd) {
				have_cmd = 0;
				exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
				(void)!write((int)status_fd, &st, sizeof st);
				close((int)status_fd);
			}
		}
	}
}
