/*
 * jexec's fast path (issue 10), part of the jexec launcher (launcher.c).
 *
 *   jexec JID command [args...]
 *
 * run in C, without the interpreter: CPython's start-up alone (~9 ms here)
 * is half of `runc exec`.  Python stays the policy.  What a process joining
 * the jail may keep -- the capabilities and the seccomp program -- is what
 * Python wrote into the jail's record (exec_knobs, exec_caps, exec_seccomp:
 * lifecycle/attach.py remember_exec_plan, made from the record's knobs);
 * this file only executes it, in the order lifecycle/attach.py does, and
 * hands over to Python, before anything it did can be seen, in every case
 * it does not take:
 *
 *   an option or a jail name; not root; inside a jail; LINJAIL_DEBUG or
 *   LINJAIL_NO_FAST_PATH set;
 *   a closed descriptor 0-2 or any descriptor above 2; a terminal or a
 *   socket on 0-2; a record that is not live and running; no plan, or a
 *   plan made for other knobs; v1 cgroups of its own (an OCI container's);
 *   an rctl rule naming the jail, or a v1 cgroup of it while any rule exists; a seccomp program that is not a
 *   regular file of root's, mode 0600-like, and a whole program.
 *
 * Descriptors 0-2 follow lifecycle/stdio.py for the kinds taken here: a pipe
 * passes; the host's /dev/null becomes a null device of the jail's own; any
 * other file a pipe relayed by `linjail-reaper relay` (outputs sharing one
 * open file share one relay).
 *
 *   launcher (host)          joiner                         command (the jail)
 *   record, plan, ns fds,
 *   stdio; clone3 into  -->  non-dumpable; close fds;
 *   the jail's cgroup        [setns user; jail root] setns
 *                            cgroup ipc uts net pid mnt;
 *                            fork  ------------------>       stdio; setsid; chdir /;
 *   forward signals     <--  report its PID; wait; exit      caps; seccomp; signals;
 *   wait; drain relays       with its status                 execvp
 *
 * A jail with a user namespace (the record's uid_base, issue 11): the joiner
 * enters it first and becomes jail root (host uid uid_base), as
 * confine/userns.py join() does, and the private null device is jailed
 * root's (userns.own_stdio).
 *
 * The same processes as Python's (lifecycle/attach.py): the joiner stays in
 * the host's PID namespace and counts in the jail's cgroup; the command is
 * non-dumpable until execve.  Messages are Python's, with glibc's error
 * texts (os.strerror).
 */
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#define FAST_NOT_TAKEN (-1)

/* glibc's wording where musl's differs, for what these calls can return */
static const char *glibc_strerror(int e)
{
	switch (e) {
	case EIO: return "Input/output error";
	case ENOMEM: return "Cannot allocate memory";
	case EBUSY: return "Device or resource busy";
	case EXDEV: return "Invalid cross-device link";
	case EMFILE: return "Too many open files";
	case ENAMETOOLONG: return "File name too long";
	case ELOOP: return "Too many levels of symbolic links";
	case ELIBBAD: return "Accessing a corrupted shared library";
	case EOVERFLOW: return "Value too large for defined data type";
	case ENOTSUP: return "Operation not supported";
	default: return strerror(e);
	}
}

/* the whole of a small file (NUL-terminated), or -1 */
static ssize_t slurp(const char *path, char *buf, size_t size)
{
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	for (;;) {
		ssize_t n = read(fd, buf + len, size - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == size - 1) {        /* larger than expected: not ours */
			close(fd);
			errno = EFBIG;
			return -1;
		}
	}
	close(fd);
	buf[len] = '\0';
	return (ssize_t)len;
}

/* --- the checks: nothing below changes anything ----------------------- */

static int all_digits(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max || s[0] == '0')
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

/* fds 0-2 open, nothing above 2 (stdio.py: those would be sorted one by one) */
static int only_stdio(void)
{
	DIR *d;
	struct dirent *e;
	int ok = 1, own, fd;
	for (fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0)
			return 0;
	d = opendir("/proc/self/fd");
	if (d == NULL)
		return 0;
	own = dirfd(d);
	while ((e = readdir(d)) != NULL) {
		long n;
		char *end;
		if (e->d_name[0] == '.')
			continue;
		n = strtol(e->d_name, &end, 10);
		if (*end == '\0' && n > 2 && n != own)
			ok = 0;
	}
	closedir(d);
	return ok;
}

/* cli/_main.jailed; a PID 1 environment too large to look at: not taken */
static int jailed(void)
{
	static char env[65536];
	ssize_t n = slurp("/proc/1/environ", env + 1, sizeof env - 1), i;
	if (n < 0)
		return errno == EFBIG;
	env[0] = '\0';
	for (i = 0; i + 18 <= n + 1; i++)
		if (memcmp(env + i, "\0LINJAIL_JAILED=1\0", 18) == 0)
			return 1;
	return 0;
}

struct record {
	char bootid[64], state[16], cgroup[4096], knobs[1024], name[256];
	char exec_knobs[1024], exec_seccomp[4096], exec_v1[4096];
	long pid;
	unsigned long long starttime, exec_caps, uid_base;
	int have_caps, have_v1, v1dirs;
};

/* a text field as registry.py encodes it: taken only when it needs no
 * unescaping (no backslash) and fits */
static int text_field(char *dst, size_t size, const char *value)
{
	size_t n = strlen(value);
	if (strchr(value, '\\') != NULL || n >= size)
		return -1;
	memcpy(dst, value, n + 1);
	return 0;
}

static int read_record(const char *state_dir, const char *jid, struct record *r)
{
	static char data[65536];
	const struct { const char *key; char *dst; size_t size; } texts[] = {
		{ "bootid", r->bootid, sizeof r->bootid },
		{ "state", r->state, sizeof r->state },
		{ "cgroup", r->cgroup, sizeof r->cgroup },
		{ "knobs", r->knobs, sizeof r->knobs },
		{ "exec_knobs", r->exec_knobs, sizeof r->exec_knobs },
		{ "exec_seccomp", r->exec_seccomp, sizeof r->exec_seccomp },
		{ "exec_v1", r->exec_v1, sizeof r->exec_v1 },
		{ "name", r->name, sizeof r->name },
	};
	unsigned long long pid = 0;
	const struct { const char *key; unsigned long long *dst; } numbers[] = {
		{ "pid", &pid }, { "starttime", &r->starttime }, { "exec_caps", &r->exec_caps },
		{ "uid_base", &r->uid_base },
	};
	char path[4200], *line, *next;
	size_t i;
	memset(r, 0, sizeof *r);
	if (snprintf(path, sizeof path, "%s/jails/%s", state_dir, jid) >= (int)sizeof path ||
	    slurp(path, data, sizeof data) < 0)
		return -1;
	for (line = data; *line; line = next) {
		char *tab, *end;
		next = strchr(line, '\n');
		tab = strchr(line, '\t');
		if (next == NULL || tab == NULL || tab > next)
			return -1;
		*next++ = '\0';
		*tab++ = '\0';
		for (i = 0; i < sizeof texts / sizeof texts[0]; i++)
			if (strcmp(line, texts[i].key) == 0 &&
			    text_field(texts[i].dst, texts[i].size, tab) < 0)
				return -1;
		r->have_v1 |= strcmp(line, "exec_v1") == 0;
		/* v1 cgroups of its own (an OCI container's cgroupsPath): Python's */
		r->v1dirs |= strcmp(line, "v1dirs") == 0 && *tab != '\0';
		for (i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
			if (strcmp(line, numbers[i].key) != 0)
				continue;
			errno = 0;
			*numbers[i].dst = strtoull(tab, &end, 10);
			if (errno || *end || end == tab || *tab == '-')
				return -1;
			r->have_caps |= numbers[i].dst == &r->exec_caps;
		}
	}
	r->pid = pid > 0x7fffffff ? 0 : (long)pid;
	return 0;
}

/* registry.starttime: field 22 of /proc/PID/stat; 0 for a zombie or none */
static unsigned long long starttime(long pid)
{
	char path[64], data[4096], *p;
	int field;
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	if (slurp(path, data, sizeof data) < 0 || (p = strrchr(data, ')')) == NULL ||
	    p[1] != ' ')
		return 0;
	p += 2;
	if (*p == 'Z' || *p == 'X')
		return 0;
	for (field = 0; field < 19; field++) {
		p = strchr(p, ' ');
		if (p == NULL)
			return 0;
		p++;
	}
	return strtoull(p, NULL, 10);
}

static int live(const struct record *r)
{
	char boot[64];
	ssize_t n = slurp("/proc/sys/kernel/random/boot_id", boot, sizeof boot);
	if (n <= 0)
		return 0;
	if (boot[n - 1] == '\n')
		boot[n - 1] = '\0';
	return strcmp(r->bootid, boot) == 0 && strcmp(r->state, "running") == 0 &&
	       r->pid > 0 && r->starttime != 0 && starttime(r->pid) == r->starttime;
}

/* seccomp.valid_program: whole instructions, within the kernel's limit,
 * every jump landing inside, the last one a return */
static int valid_program(const unsigned char *p, size_t len)
{
	size_t n = len / 8, pc;
	if (len % 8 || n == 0 || n > 4096 || (p[len - 8] & 0x07) != 0x06)
		return 0;
	for (pc = 0; pc < n; pc++) {
		unsigned code = p[pc * 8];
		if (code == 0x05) {                     /* BPF_JMP|BPF_JA */
			uint32_t k;
			memcpy(&k, p + pc * 8 + 4, 4);
			if (pc + 1 + (size_t)k >= n)
				return 0;
		} else if ((code & 0x07) == 0x05 && (code & 0xF0) != 0) {
			unsigned jt = p[pc * 8 + 2], jf = p[pc * 8 + 3];
			if (pc + 1 + (jt > jf ? jt : jf) >= n)
				return 0;
		}
	}
	return 1;
}

static unsigned char bpf[4096 * 8];
static size_t bpf_len;

/* seccomp.read_cache's trust rules: a regular file of root's that no one
 * else may read or write, a whole program */
static ssize_t load_program(const char *path)
{
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 077) || st.st_size > (off_t)sizeof bpf) {
		close(fd);
		return -1;
	}
	n = read(fd, bpf, sizeof bpf);
	close(fd);
	if (n != st.st_size || !valid_program(bpf, (size_t)n))
		return -1;
	return n;
}

/* attach.py: while any rctl rule exists (rctl.exists), a jexec joins the
 * jail's v1 cgroups that exist and takes the rlimits of the rules naming
 * the jail (limits.attach).  The fast path goes on only when that is
 * nothing: no rule names this jail (by JID or name: the rule file's second
 * field) and none of its v1 cgroups (exec_v1, from Python) exists; any line
 * that is not a jail rule, or a plan without exec_v1, is Python's. */
static int rctl_leaves_it_alone(const char *state_dir, const char *jid,
				const struct record *r)
{
	static char rules[65536];
	char path[4200], *line, *next, *v1;
	snprintf(path, sizeof path, "%s/rctl/rules", state_dir);
	if (slurp(path, rules, sizeof rules) < 0)
		return errno == ENOENT;
	if (!r->have_v1 || strchr(r->name, ':') != NULL)
		return 0;
	for (line = rules; *line; line = next) {
		char *id, *end;
		next = strchr(line, '\n');
		if (next == NULL)
			return 0;
		*next++ = '\0';
		if (strncmp(line, "jail:", 5) != 0)
			return 0;
		id = line + 5;
		end = strchr(id, ':');
		if (end == NULL)
			return 0;
		*end = '\0';
		if (strcmp(id, jid) == 0 || (r->name[0] && strcmp(id, r->name) == 0))
			return 0;
	}
	for (v1 = (char *)r->exec_v1; *v1; v1 = next) {
		struct stat st;
		char one[4096];
		size_t n = strcspn(v1, ":");
		next = v1 + n + (v1[n] == ':');
		if (n >= sizeof one)
			return 0;
		memcpy(one, v1, n);
		one[n] = '\0';
		if (stat(one, &st) == 0 || errno != ENOENT)
			return 0;
	}
	return 1;
}

enum kind { PASS, NUL, FILE_ };

/* stdio.classify for the kinds taken here; -1: not taken */
static int classify(int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0 || S_ISDIR(st.st_mode) || S_ISSOCK(st.st_mode) || isatty(fd))
		return -1;
	if (S_ISFIFO(st.st_mode)) {
		char link[64], path[64];
		ssize_t n;
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
		n = readlink(path, link, sizeof link - 1);
		if (n < 0)
			return FILE_;
		link[n] = '\0';
		return strncmp(link, "pipe:", 5) == 0 ? PASS : FILE_;
	}
	if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3))
		return NUL;
	return FILE_;
}

/* --- doing it -------------------------------------------------------- */

/* stdio.private_null: /dev/null on a tmpfs attached nowhere */
static int private_null(void)
{
	int fs, mnt, fd;
	fs = (int)syscall(SYS_fsopen, "tmpfs", 1 /* FSOPEN_CLOEXEC */);
	if (fs < 0)
		return -1;
	if (syscall(SYS_fsconfig, fs, 6 /* FSCONFIG_CMD_CREATE */, NULL, NULL, 0) < 0) {
		close(fs);
		return -1;
	}
	mnt = (int)syscall(SYS_fsmount, fs, 1 /* FSMOUNT_CLOEXEC */,
			   0x2 | 0x8 /* MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC */);
	close(fs);
	if (mnt < 0)
		return -1;
	fd = -1;
	if (mknodat(mnt, "null", 0666 | S_IFCHR, makedev(1, 3)) == 0 &&
	    fchmodat(mnt, "null", 0666, 0) == 0)
		fd = openat(mnt, "null", O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	close(mnt);
	return fd;
}

/* stdio._spawn: `linjail-reaper relay MODE 3 4 [5]` in a session of its own,
 * with nothing of the caller's on 0-2, signals as Python leaves them */
static int spawn_relay(const char *mode, int src, int dst, int ctl)
{
	static const char reaper[] = SRC "/linjail/reaper/linjail-reaper";
	char *args[] = { (char *)reaper, "relay", (char *)mode, "3", "4",
			 ctl >= 0 ? "5" : NULL, NULL };
	char *noenv[] = { NULL };
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int a = fcntl(src, F_DUPFD_CLOEXEC, 10), b = fcntl(dst, F_DUPFD_CLOEXEC, 10);
		int c = ctl >= 0 ? fcntl(ctl, F_DUPFD_CLOEXEC, 10) : -1, null;
		sigset_t none;
		if (a < 0 || b < 0 || (ctl >= 0 && c < 0) || dup2(a, 3) < 0 || dup2(b, 4) < 0 ||
		    (c >= 0 && dup2(c, 5) < 0))
			_exit(127);
		null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
			_exit(127);
		setsid();
		signal(SIGPIPE, SIG_IGN);
		signal(SIGXFSZ, SIG_IGN);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execve(reaper, args, noenv);
		_exit(127);
	}
	return 0;
}

struct handed {
	int fds[3];          /* what the command gets on 0-2 */
	int own[4], nown;    /* ours to close once the command holds them */
	int ctl[2], nctl;    /* output relays to drain at the end */
};

static int kcmp_same(int a, int b)
{
	pid_t me = getpid();
	return syscall(SYS_kcmp, me, me, 0 /* KCMP_FILE */, a, b) == 0;
}

static int prepare(const int kinds[3], struct handed *h, unsigned long long uid_base)
{
	int null = -1, t;
	for (t = 0; t < 3; t++)
		h->fds[t] = t;
	for (t = 0; t < 3; t++) {
		if (kinds[t] == NUL) {
			if (null < 0) {
				if ((null = private_null()) < 0)
					return -1;
				h->own[h->nown++] = null;
				/* userns.own_stdio: jailed root's, as with 0 */
				if (uid_base && fchown(null, (uid_t)uid_base, (gid_t)uid_base) < 0)
					return -1;
			}
			h->fds[t] = null;
		} else if (kinds[t] == FILE_ && t == 0) {
			int p[2];
			if (pipe2(p, O_CLOEXEC) < 0)
				return -1;
			h->own[h->nown++] = p[0];
			if (spawn_relay("i", 0, p[1], -1) < 0) {
				close(p[1]);
				return -1;
			}
			close(p[1]);
			h->fds[0] = p[0];
		} else if (kinds[t] == FILE_) {
			int p[2], s[2];
			if (t == 2 && kinds[1] == FILE_ && kcmp_same(1, 2)) {
				h->fds[2] = h->fds[1];       /* one relay for both */
				continue;
			}
			if (pipe2(p, O_CLOEXEC) < 0)
				return -1;
			(void)fcntl(p[1], 1031 /* F_SETPIPE_SZ */, 1 << 20);
			h->own[h->nown++] = p[1];
			if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) < 0) {
				close(p[0]);
				return -1;
			}
			h->ctl[h->nctl++] = s[0];
			if (spawn_relay("o", p[0], t, s[1]) < 0) {
				close(p[0]);
				close(s[1]);
				return -1;
			}
			close(p[0]);
			close(s[1]);
			h->fds[t] = p[1];
		}
	}
	return 0;
}

/* attach.py's order: cgroup first (its view is computed from the cgroup
 * joined), the mount namespace last (it changes root and cwd) */
static const struct { const char *name; int flag; } namespaces[] = {
	{ "cgroup", 0x02000000 }, { "ipc", 0x08000000 }, { "uts", 0x04000000 },
	{ "net", 0x40000000 }, { "pid", 0x20000000 }, { "mnt", 0x00020000 },
};
#define NNS (sizeof namespaces / sizeof namespaces[0])

struct clone_args_v2 {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size,
		 tls, set_tid, set_tid_size, cgroup;
};

static void fail_line(const char *a, const char *b, int e)
{
	say(a, b, glibc_strerror(e));
}

/* os.execvpe: the first error other than ENOENT/ENOTDIR wins, else the last */
static int execvpe_py(char **argv, char **envp)
{
	const char *file = argv[0], *path = NULL, *p;
	char full[4096];
	int saved = 0, last = ENOENT;
	char **e;
	if (strchr(file, '/') != NULL) {
		execve(file, argv, envp);
		return errno;
	}
	for (e = envp; *e; e++)
		if (strncmp(*e, "PATH=", 5) == 0) {
			path = *e + 5;
			break;
		}
	if (path == NULL)
		path = "/bin:/usr/bin";          /* os.defpath */
	for (p = path;; ) {
		const char *colon = strchr(p, ':');
		size_t dlen = colon ? (size_t)(colon - p) : strlen(p);
		int n = dlen == 0 ? snprintf(full, sizeof full, "%s", file) :
			snprintf(full, sizeof full, "%.*s%s%s", (int)dlen, p,
				 p[dlen - 1] == '/' ? "" : "/", file);
		if (n < (int)sizeof full) {
			execve(full, argv, envp);
			last = errno;
		} else {
			last = ENAMETOOLONG;
		}
		if (last != ENOENT && last != ENOTDIR && saved == 0)
			saved = last;
		if (colon == NULL)
			break;
		p = colon + 1;
	}
	return saved ? saved : last;
}

/* stdio.close_all_but: every descriptor not in KEEP (nor 0-2) closed */
static void close_all_but(int *keep, int n)
{
	int i, j, first = 3;
	for (i = 0; i < n; i++)             /* a few: sorted by insertion */
		for (j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
			int x = keep[j];
			keep[j] = keep[j - 1];
			keep[j - 1] = x;
		}
	for (i = 0; i < n; i++) {
		if (keep[i] > first)
			syscall(SYS_close_range, (unsigned)first, (unsigned)keep[i] - 1, 0);
		if (keep[i] + 1 > first)
			first = keep[i] + 1;
	}
	syscall(SYS_close_range, (unsigned)first, ~0U, 0);
}

/* os.execvpe gets the environment as a dict: taken only when that changes
 * nothing (every entry KEY=VALUE, no key twice) */
static int plain_environment(void)
{
	char **a, **b;
	for (a = environ; *a; a++) {
		const char *eq = strchr(*a, '=');
		if (eq == NULL)
			return 0;
		for (b = environ; b < a; b++)
			if (strncmp(*a, *b, (size_t)(eq - *a) + 1) == 0)
				return 0;
	}
	return 1;
}

/* a command name that one_line() would escape in a message: not taken */
static int printable_name(const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c < 0x20 && c != '\t') || c == 0x7F || c == 0xC2)
			return 0;
	}
	return 1;
}

/* attach._command: the process that becomes the command, in the jail */
static void command(char **argv, const struct handed *h, unsigned long long keep,
		    const sigset_t *mask)
{
	struct { uint32_t version; int pid; } hdr = { 0x20080522, 0 };
	struct { uint32_t eff, perm, inh; } data[2];
	struct { unsigned short len; const void *filter; } prog;
	struct { void *h; unsigned long flags; void *restorer; unsigned long mask; } dfl = { 0 };
	int cap, root, dir, t, high[3];
	struct { uint64_t flags, mode, resolve; } how = {
		O_PATH | O_DIRECTORY | O_CLOEXEC, 0, 0x10 | 0x02 /* IN_ROOT | NO_MAGICLINKS */ };
	char cwd[8];
	int e;

	/* 0-2 the command's, nothing else (stdio.place) */
	for (t = 0; t < 3; t++) {
		high[t] = fcntl(h->fds[t], F_DUPFD_CLOEXEC, 10);
		if (high[t] < 0) {
			fail_line("jexec: ", "", errno);
			_exit(1);
		}
	}
	for (t = 0; t < 3; t++)
		dup2(high[t], t);
	syscall(SYS_close_range, 3, ~0U, 0);
	setsid();
	/* start.enter_dir("/"): resolved in the jail's root, no magic link */
	root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	dir = root < 0 ? -1 : (int)syscall(SYS_openat2, root, "/", &how, sizeof how);
	e = errno;
	if (dir < 0 || fchdir(dir) < 0 || getcwd(cwd, sizeof cwd) == NULL || cwd[0] != '/') {
		fail_line("jexec: chdir(): /: ", "", dir < 0 ? e : errno ? errno : ENOENT);
		_exit(1);
	}
	close(dir);
	close(root);
	/* caps.drop: the bounding set, then ambient and inheritable cleared */
	for (cap = 0; prctl(PR_CAPBSET_READ, cap) >= 0; cap++) {
		if (!(cap < 64 && (keep >> cap) & 1) && prctl(PR_CAPBSET_DROP, cap) < 0) {
			fail_line("jexec: prctl(PR_CAPBSET_DROP): ", "", errno);
			_exit(1);
		}
	}
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (syscall(SYS_capget, &hdr, data) < 0) {
		fail_line("jexec: capget: ", "", errno);
		_exit(1);
	}
	data[0].inh = data[1].inh = 0;
	if (syscall(SYS_capset, &hdr, data) < 0) {
		fail_line("jexec: capset: ", "", errno);
		_exit(1);
	}
	/* seccomp.install, while CAP_SYS_ADMIN is effective (no no_new_privs) */
	prog.len = (unsigned short)(bpf_len / 8);
	prog.filter = bpf;
	if (prctl(PR_SET_SECCOMP, 2 /* SECCOMP_MODE_FILTER */, &prog, 0, 0) < 0) {
		fail_line("jexec: prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER): ", "", errno);
		_exit(1);
	}
	/* libc.default_signals: every disposition back to SIG_DFL, by the raw
	 * call (musl refuses its own 32-34, which a caller may have ignored) */
	dfl.h = SIG_DFL;
	for (cap = 1; cap <= 64; cap++)
		if (cap != SIGKILL && cap != SIGSTOP)
			syscall(SYS_rt_sigaction, cap, &dfl, NULL, 8);
	sigprocmask(SIG_SETMASK, mask, NULL);    /* the caller's, SIGINT unblocked */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	e = execvpe_py(argv, environ);
	{
		char head[4200];
		snprintf(head, sizeof head, "jexec: execvp(%s) failed: ", argv[0]);
		fail_line(head, "", e);
	}
	_exit(1);
}

/* attach._joiner: born in the jail's cgroup, it stays in the host's PID
 * namespace (nothing of it is seen in the jail), enters the jail's other
 * namespaces, forks the command, reports its PID and waits for it */
/* userns.join: into the jail's user namespace, as jail root (host uid
 * uid_base) with every capability there, the supplementary groups that are
 * jail ids kept; then the other namespaces (the UTS one is owned by a child
 * namespace whose owner is jail root) */
static void join_userns(int fd)
{
	gid_t groups[256];
	int n = getgroups(256, groups), i, kept = 0;
	for (i = 0; i < n; i++)
		if (groups[i] < 65536)
			groups[kept++] = groups[i];
	if (setns(fd, 0x10000000 /* CLONE_NEWUSER */) < 0 ||
	    syscall(SYS_setgroups, kept, groups) < 0 || syscall(SYS_setresgid, 0, 0, 0) < 0 ||
	    syscall(SYS_setresuid, 0, 0, 0) < 0) {
		fail_line("jexec: setns: ", "", errno);
		_exit(1);
	}
	close(fd);
	prctl(PR_SET_PDEATHSIG, SIGKILL);     /* the change of uid cleared it */
}

static void joiner(char **argv, const int nsfds[NNS], int userfd, const struct handed *h,
		   unsigned long long keep, const sigset_t *mask, int pid_w)
{
	unsigned i;
	int t, st;
	pid_t cmd;
	signal(SIGINT, SIG_IGN);      /* a terminal's Ctrl-C is the command's */
	signal(SIGQUIT, SIG_IGN);
	prctl(PR_SET_DUMPABLE, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* before entering anything, only what the command is given stays open
	 * (and 0-2, where the joiner reports) */
	{
		int keep[5 + NNS];
		for (t = 0; t < 3; t++)
			keep[t] = h->fds[t];
		for (i = 0; i < NNS; i++)
			keep[3 + i] = nsfds[i];
		keep[3 + NNS] = pid_w;
		keep[4 + NNS] = userfd;
		close_all_but(keep, userfd >= 0 ? 5 + NNS : 4 + NNS);
	}
	if (userfd >= 0)
		join_userns(userfd);
	for (i = 0; i < NNS; i++) {
		if (setns(nsfds[i], namespaces[i].flag) < 0) {
			fail_line("jexec: setns: ", "", errno);
			_exit(1);
		}
		close(nsfds[i]);
	}
	cmd = fork();
	if (cmd < 0) {
		fail_line("jexec: ", "", errno);
		_exit(1);
	}
	if (cmd == 0) {
		close(pid_w);
		command(argv, h, keep, mask);
	}
	(void)!write(pid_w, &cmd, sizeof cmd);
	close(pid_w);
	for (t = 0; t < 3; t++)
		if (h->fds[t] > 2)
			close(h->fds[t]);
	while (waitpid(cmd, &st, 0) < 0)
		if (errno != EINTR)
			_exit(1);
	_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}

static volatile pid_t target;
/* the signals jexec passes to its command, blocked by the launcher from its
 * first instruction until the command's PID is known (launcher.c), and the
 * mask the caller gave jexec, which the command gets back */
static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2,
				 SIGCONT, SIGWINCH };
static sigset_t caller_mask;

static void forward(int sig)
{
	int saved = errno;
	if (target > 0)
		kill(target, sig);
	errno = saved;
}

static int fast_jexec(int argc, char **argv)
{
	const char *state_dir = getenv("LINJAIL_STATE_DIR");
	struct record rec;
	struct handed h;
	struct clone_args_v2 args;
	struct sigaction sa;
	sigset_t mask, forward_set;
	int kinds[3], nsfds[NNS], userfd = -1, cgfd, t, st, pid_pipe[2];
	unsigned i;
	char path[4200];
	ssize_t n;
	pid_t child, cmd;

	if (argc < 3 || !all_digits(argv[1], 6) || argv[2][0] == '\0' ||
	    !printable_name(argv[2]) || geteuid() != 0 || getenv("LINJAIL_DEBUG") != NULL ||
	    getenv("LINJAIL_NO_FAST_PATH") != NULL ||
	    !plain_environment() || !only_stdio() || jailed())
		return FAST_NOT_TAKEN;
	if (state_dir == NULL || state_dir[0] == '\0')
		state_dir = "/run/linjail";
	if (read_record(state_dir, argv[1], &rec) < 0 || !live(&rec) || !rec.have_caps ||
	    rec.v1dirs ||
	    rec.cgroup[0] == '\0' || rec.exec_seccomp[0] == '\0' ||
	    strcmp(rec.exec_knobs, rec.knobs) != 0)
		return FAST_NOT_TAKEN;
	if (!rctl_leaves_it_alone(state_dir, argv[1], &rec))
		return FAST_NOT_TAKEN;
	if ((n = load_program(rec.exec_seccomp)) < 0)
		return FAST_NOT_TAKEN;
	bpf_len = (size_t)n;
	for (t = 0; t < 3; t++)
		if ((kinds[t] = classify(t)) < 0)
			return FAST_NOT_TAKEN;

	/* attach.open_namespaces, then the PID checked again; descriptors are
	 * left to the interpreter's exec when the fast path is not taken (all
	 * close-on-exec; a relay started meanwhile ends at EOF) */
	if (rec.uid_base) {
		snprintf(path, sizeof path, "/proc/%ld/ns/user", rec.pid);
		if ((userfd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			return FAST_NOT_TAKEN;
	}
	for (i = 0; i < NNS; i++) {
		snprintf(path, sizeof path, "/proc/%ld/ns/%s", rec.pid, namespaces[i].name);
		if ((nsfds[i] = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			return FAST_NOT_TAKEN;
	}
	cgfd = open(rec.cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cgfd < 0 || starttime(rec.pid) != rec.starttime)
		return FAST_NOT_TAKEN;
	memset(&h, 0, sizeof h);
	if (prepare(kinds, &h, rec.uid_base) < 0 || pipe2(pid_pipe, O_CLOEXEC) < 0)
		return FAST_NOT_TAKEN;

	/* a Ctrl-C so far ends jexec before anything ran (status 130); from
	 * here on it is the command's, like the other signals, which wait
	 * until its PID is known (relay.forward_signals) */
	if (sigpending(&mask) == 0 && sigismember(&mask, SIGINT))
		return 130;
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&forward_set);
	for (i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
		sigaddset(&forward_set, forwarded[i]);
	sigprocmask(SIG_BLOCK, &forward_set, NULL);     /* (the launcher did already) */
	mask = caller_mask;
	sigdelset(&mask, SIGINT);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = forward;
	sa.sa_flags = SA_RESTART;
	for (i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
		sigaction(forwarded[i], &sa, NULL);
	memset(&args, 0, sizeof args);
	args.flags = 0x200000000ULL;     /* CLONE_INTO_CGROUP */
	args.exit_signal = SIGCHLD;
	args.cgroup = (uint64_t)cgfd;
	child = (pid_t)syscall(SYS_clone3, &args, sizeof args);
	if (child < 0) {
		fail_line("jexec: clone3: ", "", errno);
		return 1;
	}
	if (child == 0) {
		close(pid_pipe[0]);
		joiner(argv + 2, nsfds, userfd, &h, rec.exec_caps, &mask, pid_pipe[1]);
	}
	close(pid_pipe[1]);
	close(cgfd);
	for (i = 0; i < NNS; i++)
		close(nsfds[i]);
	if (userfd >= 0)
		close(userfd);
	for (i = 0; i < (unsigned)h.nown; i++)
		close(h.own[i]);
	/* relay.forward_signals: the caller's signals go to the command (to
	 * the joiner if it never said the command's PID) */
	while ((n = read(pid_pipe[0], &cmd, sizeof cmd)) < 0 && errno == EINTR)
		;
	close(pid_pipe[0]);
	target = n == (ssize_t)sizeof cmd ? cmd : child;
	sigprocmask(SIG_SETMASK, &mask, NULL);
	while (waitpid(child, &st, 0) < 0)
		if (errno != EINTR) {
			st = 1 << 8;
			break;
		}
	/* Prepared.drain: each output relay has written what the command wrote */
	for (i = 0; i < (unsigned)h.nctl; i++) {
		char c;
		if (send(h.ctl[i], "s", 1, MSG_NOSIGNAL) == 1)
			while (read(h.ctl[i], &c, 1) < 0 && errno == EINTR)
				;
		close(h.ctl[i]);
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
