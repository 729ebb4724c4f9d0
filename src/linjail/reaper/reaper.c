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
 * (native int) and the descriptor is closed.  If the launcher dies first
 * (`kill -9 jail`), the read end of STATUS_FD is gone and the command is
 * killed with SIGKILL, as on DragonFly where jail(8) *is* the command: the
 * jail lives on only if the command had already left daemons behind.  Signals that reach PID 1 from
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
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
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

/*
 * linjail-reaper relay o SRC DST CTL   (the jail writes SRC, a pipe; DST is a host file)
 * linjail-reaper relay i SRC DST       (SRC is a host file; the jail reads DST, a pipe)
 *
 * The host side of a jail's standard descriptors when they are files,
 * devices, FIFOs or datagram sockets (SPEC §7: no host file is handed to a
 * jail).  It runs on the host, in a session of its own (the administrator's
 * Ctrl-C does not reach it), and ends by itself: at EOF, or when its
 * destination fails (then it closes its source, so the writer in the jail
 * gets EPIPE as it would have from the file).  CTL is a socket to the
 * launcher: one byte asks "drain what is in the pipe now", answered with one
 * byte once it is in DST, so `jail cmd > f; cat f` shows all of cmd's output
 * while daemons left in the jail may go on writing.
 */
static char relay_buf[65536];

/* Move up to one pipe's worth from src to dst: bytes moved, 0 at EOF, -1 on
 * EAGAIN (nothing to read now), -2 when dst or src failed. */
/* All of BUF to FD, waiting when a non-blocking FD is full: 0, or -1 when
 * FD failed. */
static int write_all(int fd, const char *buf, size_t len)
{
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, buf + off, len - off);
		if (w > 0) {
			off += (size_t)w;
		} else if (w < 0 && errno == EAGAIN) {
			struct pollfd p = { fd, POLLOUT, 0 };
			(void)poll(&p, 1, -1);
		} else if (!(w < 0 && errno == EINTR)) {
			return -1;
		}
	}
	return 0;
}

static ssize_t copy_once(int src, int dst, int *use_splice)
{
	ssize_t n;
	if (*use_splice) {
		n = splice(src, NULL, dst, NULL, 1 << 20, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n >= 0)
			return n;
		if (errno == EAGAIN)
			return -1;
		if (errno != EINVAL && errno != ENOSYS)
			return -2;
		*use_splice = 0;   /* a tty, a datagram socket...: read and write */
	}
	n = read(src, relay_buf, sizeof relay_buf);
	if (n < 0)
		return errno == EAGAIN ? -1 : (errno == EINTR ? -1 : -2);
	return write_all(dst, relay_buf, (size_t)n) < 0 ? -2 : n;
}

static int relay(int argc, char **argv)
{
	long src, dst, ctl = -1;
	int splice_ok = 1, out;
	if (argc < 5 || (argv[2][0] != 'o' && argv[2][0] != 'i') ||
	    parse_int(argv[3], &src) || parse_int(argv[4], &dst) ||
	    (argc > 5 && parse_int(argv[5], &ctl)))
		return 111;
	out = argv[2][0] == 'o';
	setsid();
	signal(SIGPIPE, SIG_IGN);
	{
		long top = src > dst ? src : dst;
		if (ctl > top)
			top = ctl;
		syscall(SYS_close_range, (unsigned)top + 1, ~0U, 0);
	}
	if (!out) {
		/* host file -> the jail's pipe: blocking, until EOF or the jail
		 * closes its end */
		for (;;) {
			ssize_t n = copy_once((int)src, (int)dst, &splice_ok);
			if (n == 0 || n == -2)
				return 0;
			if (n == -1) {
				struct pollfd p = { (int)src, POLLIN, 0 };
				(void)poll(&p, 1, 1000);
			}
		}
	}
	fcntl((int)src, F_SETFL, fcntl((int)src, F_GETFL) | O_NONBLOCK);
	for (;;) {
		struct pollfd p[2] = { { (int)src, POLLIN, 0 }, { (int)ctl, POLLIN, 0 } };
		int nfds = ctl >= 0 ? 2 : 1;
		if (poll(p, (nfds_t)nfds, -1) < 0)
			continue;
		if (p[0].revents) {
			/* all there is now: one poll per wake-up, not per chunk */
			for (;;) {
				ssize_t n = copy_once((int)src, (int)dst, &splice_ok);
				if (n == 0 || n == -2)
					return 0;
				if (n == -1)
					break;
			}
		}
		if (nfds == 2 && p[1].revents) {
			char c;
			if (read((int)ctl, &c, 1) <= 0) {
				close((int)ctl);
				ctl = -1;
				continue;
			}
			for (;;) {
				ssize_t n = copy_once((int)src, (int)dst, &splice_ok);
				if (n == 0 || n == -2) {
					(void)!write((int)ctl, "d", 1);
					return 0;
				}
				if (n == -1)
					break;
			}
			(void)!write((int)ctl, "d", 1);
		}
	}
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
	size_t len;
	int n = snprintf(buf, sizeof buf, "%s%s%s\n", a, b, c);
	if (n <= 0)
		return;
	len = (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1;
	buf[len - 1] = '\n';
	(void)write_all(2, buf, len);
}

int main(int argc, char **argv)
{
	long status_fd, go_fd, uid, gid;
	gid_t groups[256];
	int ngroups;
	sigset_t all, old;
	pid_t cmd = -1;
	int have_cmd = 1, exit_code = 0, idle = 0, persist = 0, cmdi = 7, sfd;
	char go = 0;

	if (argc > 1 && strcmp(argv[1], "relay") == 0)
		return relay(argc, argv);
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
		status_fd = -1;
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
		for (sig = 1; sig < NSIG; sig++) {
			if (sigaction(sig, &dfl, NULL) < 0) {
				/* 32-34: libc keeps them for itself and refuses; an
				 * ignored one (inherited from whoever started jail)
				 * would still be ignored by the command */
				struct { void *h; unsigned long flags; void *restorer;
					 unsigned long mask; } k = { SIG_DFL, 0, 0, 0 };
				syscall(SYS_rt_sigaction, sig, &k, NULL, 8);
			}
		}
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
	/* above 2: a closed 0-2 is not ours to fill */
	sfd = signalfd(-1, &all, SFD_CLOEXEC);
	if (sfd >= 0 && sfd < 3) {
		int high = fcntl(sfd, F_DUPFD_CLOEXEC, 3);
		close(sfd);
		sfd = high;
	}
	for (;;) {
		struct signalfd_siginfo si;
		struct pollfd p[2] = { { sfd, POLLIN, 0 }, { (int)status_fd, 0, 0 } };
		/* the status pipe is watched for POLLERR: its reader, the launcher, died */
		int watch = have_cmd && status_fd >= 0;
		int sig;
		if (idle) {
			/* No child of ours is left, but processes joined with jexec
			 * (whose parent is outside the jail) may be: they end the jail
			 * when they end, and nothing tells PID 1, so look twice a
			 * second.  kill(-1, 0) from PID 1 reaches every other process
			 * of the PID namespace; ESRCH means there is none. */
			if (!persist && kill(-1, 0) < 0 && errno == ESRCH)
				return exit_code;
		}
		if (poll(p, watch ? 2 : 1, idle ? 500 : -1) < 0 && errno != EINTR)
			return 111;
		if (watch && (p[1].revents & (POLLERR | POLLHUP))) {
			kill(cmd, SIGKILL);
			close((int)status_fd);
			status_fd = -1;
		}
		if (!(p[0].revents & POLLIN) ||
		    read(sfd, &si, sizeof si) != (ssize_t)sizeof si)
			continue;
		sig = (int)si.ssi_signo;
		if ((sig == SIG_PERSIST_ON || sig == SIG_PERSIST_OFF) && si.ssi_pid == 0) {
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
				if (status_fd >= 0) {
					(void)!write((int)status_fd, &st, sizeof st);
					close((int)status_fd);
					status_fd = -1;
				}
			}
		}
	}
}
