/*
 * probe: the escape battery's attacker, run inside a jail (SPEC §5, §6).
 *
 *   /probe ATTACK [ARGS...]          one attack: prints "ATTACK: RESULT", exits 0
 *   /probe multi "ATTACK ARGS" ... [daemon]
 *                                    each attack in turn, in this very process
 *                                    (the jail's first process); "wait FILE"
 *                                    waits for the test (skip the next attack
 *                                    if FILE says "skip"); with "daemon" a
 *                                    child stays behind to keep the jail alive
 *
 * RESULT is the errno name of the failed call (EPERM, ENOENT ...), OK when
 * the attack's call succeeded, or a word the attack explains (contained,
 * empty, survived, clean, SIGSYS ...).  Lines starting with '#' are progress
 * notes for the test (race synchronisation), not results.
 *
 * Every attack is harmless even where it unexpectedly succeeds: files that
 * could hurt the host are opened O_WRONLY and never written; what is changed
 * lives in the jail (its /tmp, its loopback, its own pty) or is undone at
 * once; calls that could change the host get arguments the kernel rejects
 * after its capability check (reboot with a bad magic), or values that change
 * nothing (the clock set to the time just read).
 *
 * Built statically (musl-gcc -static) by the test session: the jail has no
 * libc of its own.  x86_64 only (syscall numbers, int 0x80).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ constants */

#define CLONE_NEWTIME_ 0x00000080
#define CLONE_NEWCGROUP_ 0x02000000
#define OPEN_TREE_CLONE_ 1
#define MOUNT_ATTR_RDONLY_ 0x1
#define X32_SYSCALL_BIT 0x40000000
#define FS_IOC_GETFLAGS_ 0x80086601UL
#define FS_IOC_SETFLAGS_ 0x40086602UL
#define FS_IMMUTABLE_FL_ 0x10
#define FS_APPEND_FL_ 0x20
#define NETLINK_ROUTE_ 0
#define NETLINK_GENERIC_ 16
#define NETLINK_AUDIT_ 9
#define AF_ALG_ 38
#define AF_VSOCK_ 40
#define AF_PACKET_ 17
#define SOCK_PACKET_ 10
#define ETH_P_ALL_ 0x0003
#define TIOCSTI_ 0x5412UL
#define TIOCLINUX_ 0x541CUL
#define SYSLOG_ACTION_READ_ALL 3
#define KEYCTL_GET_KEYRING_ID 0
#define KEY_SPEC_SESSION_KEYRING (-3)
#define FAN_CLASS_CONTENT_ 0x4
#define SIOCSIFADDR_ 0x8916
#define RTM_NEWADDR_ 20
#define RTM_DELROUTE_ 25
#define RTM_NEWLINK_ 16
#define IFA_LOCAL_ 2
#define IFA_ADDRESS_ 1
#define NLM_F_REQUEST_ 1
#define NLM_F_ACK_ 4
#define NLM_F_CREATE_ 0x400
#define NLM_F_EXCL_ 0x200
#define NLMSG_ERROR_ 2

/* --------------------------------------------------------------- output */

static const struct {
	int num;
	const char *name;
} ERRNAMES[] = {
	{EPERM, "EPERM"}, {ENOENT, "ENOENT"}, {ESRCH, "ESRCH"}, {EINTR, "EINTR"},
	{EIO, "EIO"}, {ENXIO, "ENXIO"}, {E2BIG, "E2BIG"}, {ENOEXEC, "ENOEXEC"},
	{EBADF, "EBADF"}, {ECHILD, "ECHILD"}, {EAGAIN, "EAGAIN"}, {ENOMEM, "ENOMEM"},
	{EACCES, "EACCES"}, {EFAULT, "EFAULT"}, {EBUSY, "EBUSY"}, {EEXIST, "EEXIST"},
	{EXDEV, "EXDEV"}, {ENODEV, "ENODEV"}, {ENOTDIR, "ENOTDIR"}, {EISDIR, "EISDIR"},
	{EINVAL, "EINVAL"}, {ENFILE, "ENFILE"}, {EMFILE, "EMFILE"}, {ENOTTY, "ENOTTY"},
	{ETXTBSY, "ETXTBSY"}, {EFBIG, "EFBIG"}, {ENOSPC, "ENOSPC"}, {ESPIPE, "ESPIPE"},
	{EROFS, "EROFS"}, {EMLINK, "EMLINK"}, {EPIPE, "EPIPE"}, {ERANGE, "ERANGE"},
	{ENAMETOOLONG, "ENAMETOOLONG"}, {ENOSYS, "ENOSYS"}, {ELOOP, "ELOOP"},
	{EOPNOTSUPP, "EOPNOTSUPP"}, {EPROTONOSUPPORT, "EPROTONOSUPPORT"},
	{ESOCKTNOSUPPORT, "ESOCKTNOSUPPORT"}, {EPROTOTYPE, "EPROTOTYPE"},
	{EAFNOSUPPORT, "EAFNOSUPPORT"}, {EADDRINUSE, "EADDRINUSE"}, {ENOBUFS, "ENOBUFS"},
	{EADDRNOTAVAIL, "EADDRNOTAVAIL"}, {ENETDOWN, "ENETDOWN"},
	{ENETUNREACH, "ENETUNREACH"}, {ECONNREFUSED, "ECONNREFUSED"},
	{EHOSTUNREACH, "EHOSTUNREACH"}, {ETIMEDOUT, "ETIMEDOUT"},
	{EINPROGRESS, "EINPROGRESS"}, {ESTALE, "ESTALE"}, {ENOKEY, "ENOKEY"},
	{EDQUOT, "EDQUOT"}, {ENODATA, "ENODATA"}, {EOVERFLOW, "EOVERFLOW"},
};

static const char *errname(int e)
{
	static char buf[32];
	for (size_t i = 0; i < sizeof ERRNAMES / sizeof ERRNAMES[0]; i++)
		if (ERRNAMES[i].num == e)
			return ERRNAMES[i].name;
	snprintf(buf, sizeof buf, "errno%d", e);
	return buf;
}

static const char *current;      /* the attack being run: the line's label */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n = snprintf(buf, sizeof buf, "%s: ", current);
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof buf - 2)
		n = (int)sizeof buf - 2;
	buf[n++] = '\n';
	(void)!write(1, buf, (size_t)n);
}

/* the outcome of one call: its errno name, or OK (the call is closed if an fd) */
static void result(long rc)
{
	if (rc < 0)
		say("%s", errname(errno));
	else
		say("OK");
}

static void result_fd(long fd)
{
	int e = errno;
	if (fd >= 0)
		close((int)fd);
	errno = e;
	result(fd);
}

/* Run FN in a child (it may change the process: root, namespaces, ids); the
 * child reports errno through its exit status: 0 = OK, 1..254 = errno,
 * and a signal is reported by name. */
static void in_child(int (*fn)(void *), void *arg)
{
	pid_t pid = fork();
	int st;
	if (pid < 0) {
		result(-1);
		return;
	}
	if (pid == 0) {
		int rc = fn(arg);
		_exit(rc < 0 ? (errno & 0xff) : 0);
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFSIGNALED(st)) {
		say("%s", WTERMSIG(st) == SIGSYS ? "SIGSYS" : strsignal(WTERMSIG(st)));
		return;
	}
	if (WEXITSTATUS(st) == 0)
		say("OK");
	else
		say("%s", errname(WEXITSTATUS(st)));
}

/* OUT (of SIZE bytes) += SEP (if OUT is not empty) + S, truncated */
static void append(char *out, size_t size, const char *sep, const char *s)
{
	size_t used = strlen(out);
	if (used && used + strlen(sep) < size) {
		memcpy(out + used, sep, strlen(sep) + 1);
		used += strlen(sep);
	}
	size_t n = strlen(s);
	if (used + n >= size)
		n = size - used - 1;
	memcpy(out + used, s, n);
	out[used + n] = 0;
}

static int same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

static int arg_int(char **argv, int i, int argc)
{
	if (i >= argc) {
		say("missing argument");
		exit(2);
	}
	return atoi(argv[i]);
}

static const char *arg_str(char **argv, int i, int argc)
{
	if (i >= argc) {
		say("missing argument");
		exit(2);
	}
	return argv[i];
}

/* ----------------------------------------------------- file system escapes */

/* The classic chroot escape, twice: chroot into a subdirectory while holding
 * the old cwd, climb with "..", chroot("."); then with a saved directory fd.
 * Contained when "/" is still the jail's root and MARKER (a host path outside
 * the jail root) is out of reach. */
static const char *marker;

static int chroot_escape(void *unused)
{
	struct stat root, now, m;
	int fd;
	(void)unused;
	if (stat("/", &root) < 0)
		return -1;
	mkdir("/tmp/.probe-chroot", 0700);
	mkdir("/tmp/.probe-chroot/inner", 0700);
	/* variant 1: cwd stays outside the new root */
	if (chroot("/tmp/.probe-chroot") < 0)
		return -1;
	for (int i = 0; i < 64; i++)
		(void)!chdir("..");
	if (chroot(".") < 0)
		return -1;
	/* variant 2: a directory fd from before a second chroot */
	fd = open("/", O_RDONLY | O_DIRECTORY);
	if (chroot("/tmp/.probe-chroot/inner") < 0)
		return -1;
	if (fd >= 0 && fchdir(fd) == 0) {
		for (int i = 0; i < 64; i++)
			(void)!chdir("..");
		(void)!chroot(".");
	}
	if (stat("/", &now) < 0)
		return -1;
	if (!same_file(&root, &now))
		_exit(200);
	if (marker && stat(marker, &m) == 0)
		_exit(201);
	return 0;
}

static void attack_chroot_escape(void)
{
	pid_t pid = fork();
	int st;
	if (pid == 0) {
		int rc = chroot_escape(NULL);
		_exit(rc < 0 ? (errno & 0xff) : 0);
	}
	waitpid(pid, &st, 0);
	rmdir("/tmp/.probe-chroot/inner");
	rmdir("/tmp/.probe-chroot");
	if (!WIFEXITED(st))
		say("killed");
	else if (WEXITSTATUS(st) == 0)
		say("contained");
	else if (WEXITSTATUS(st) >= 200)
		say("ESCAPED");
	else
		say("%s", errname(WEXITSTATUS(st)));
}

/* "shocker": open_by_handle_at with the file system's root inode (2) */
static void attack_open_by_handle(void)
{
	struct {
		unsigned int bytes;
		int type;
		unsigned char f[128];
	} h;
	int mount_id, dirfd = open("/", O_RDONLY | O_DIRECTORY);
	memset(&h, 0, sizeof h);
	h.bytes = 128;
	/* a real handle first (allowed), then forge ext4's root: ino 2, gen 0 */
	if (syscall(SYS_name_to_handle_at, AT_FDCWD, "/", &h, &mount_id, 0) == 0) {
		uint32_t ino2[2] = {2, 0};
		h.bytes = 8;
		h.type = 1;    /* FILEID_INO32_GEN */
		memcpy(h.f, ino2, 8);
	}
	result_fd(syscall(SYS_open_by_handle_at, dirfd, &h, O_RDONLY));
	close(dirfd);
}

static void attack_proc_link(const char *what, int pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/%s", pid, what);
	result_fd(open(path, O_RDONLY));
}

static void attack_read_host_marker(void)
{
	result_fd(open(marker, O_RDONLY));
}

/* descriptors beyond stdio: each "fd:target" */
static void list_fds(const char *dirpath, int skip_stdio)
{
	char out[900] = "", link[256], path[300];
	DIR *d = opendir(dirpath);
	struct dirent *e;
	if (!d) {
		say("%s", errname(errno));
		return;
	}
	while ((e = readdir(d))) {
		int fd;
		ssize_t n;
		if (e->d_name[0] == '.')
			continue;
		fd = atoi(e->d_name);
		/* our own listing descriptor only when listing ourselves */
		if ((skip_stdio && fd <= 2) || (skip_stdio && fd == dirfd(d)))
			continue;
		snprintf(path, sizeof path, "%s/%s", dirpath, e->d_name);
		n = readlink(path, link, sizeof link - 1);
		link[n < 0 ? 0 : n] = 0;
		if (strncmp(link, "pipe:", 5) == 0)
			strcpy(link, "pipe");
		else if (strncmp(link, "socket:", 7) == 0)
			strcpy(link, "socket");
		snprintf(path, sizeof path, "%d:", fd);
		append(path, sizeof path, "", link);
		append(out, sizeof out, " ", path);
	}
	closedir(d);
	say("%s", out[0] ? out : "none");
}

/* the tree's own device nodes must not open: the root is nodev */
static void attack_planted_dev(const char *path)
{
	result_fd(open(path, O_RDONLY));
}

static void attack_mknod(dev_t dev, mode_t kind)
{
	long rc = mknod("/tmp/.probe-node", kind | 0600, dev);
	int e = errno;
	unlink("/tmp/.probe-node");
	errno = e;
	result(rc);
}

/* ------------------------------------------------------------ mounts */

static void attack_mount(void)
{
	long rc;
	mkdir("/tmp/.probe-mnt", 0700);
	rc = mount("tmpfs", "/tmp/.probe-mnt", "tmpfs", 0, "size=4k");
	int e = errno;
	if (rc == 0)
		umount2("/tmp/.probe-mnt", MNT_DETACH);
	rmdir("/tmp/.probe-mnt");
	errno = e;
	result(rc);
}

static void attack_remount_proc_sys(void)
{
	result(mount(NULL, "/proc/sys", NULL, MS_REMOUNT | MS_BIND, NULL));
}

static void attack_umount(void)
{
	/* the read-only /proc/sys bind: gone, /proc/sys would be writable */
	result(umount2("/proc/sys", MNT_DETACH));
}

static void attack_pivot_root(void)
{
	result(syscall(SYS_pivot_root, "/tmp", "/tmp"));
}

static void attack_move_mount(void)
{
	mkdir("/tmp/.probe-mnt", 0700);
	long rc = syscall(SYS_move_mount, AT_FDCWD, "/proc/sys", AT_FDCWD, "/tmp/.probe-mnt", 0);
	int e = errno;
	rmdir("/tmp/.probe-mnt");
	errno = e;
	result(rc);
}

static void attack_open_tree(void)
{
	result_fd(syscall(SYS_open_tree, AT_FDCWD, "/", OPEN_TREE_CLONE_));
}

static void attack_fsopen(void)
{
	result_fd(syscall(SYS_fsopen, "proc", 0));
}

static void attack_mount_setattr(void)
{
	struct {
		uint64_t set, clr, prop, userns;
	} attr = {0, MOUNT_ATTR_RDONLY_, 0, 0};
	result(syscall(SYS_mount_setattr, AT_FDCWD, "/proc/sys", 0, &attr, sizeof attr));
}

/* CVE-2022-0492: a cgroup v1 hierarchy whose release_agent runs as host root */
static void attack_release_agent(void)
{
	char path[300];
	DIR *d = opendir("/sys/fs/cgroup");
	struct dirent *e;
	/* any release_agent already visible must not open for writing */
	while (d && (e = readdir(d))) {
		int fd;
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/sys/fs/cgroup/%s/release_agent", e->d_name);
		fd = open(path, O_WRONLY);
		if (fd >= 0) {
			close(fd);
			say("OK (%s)", path);
			closedir(d);
			return;
		}
	}
	if (d)
		closedir(d);
	mkdir("/tmp/.probe-cg", 0700);
	long rc = mount("cgroup", "/tmp/.probe-cg", "cgroup", 0, "rdma");
	int err = errno;
	if (rc == 0)
		umount2("/tmp/.probe-cg", MNT_DETACH);
	rmdir("/tmp/.probe-cg");
	errno = err;
	result(rc);
}

/* ------------------------------------------------------------ namespaces */

static int do_unshare(void *flags)
{
	return unshare((int)(long)flags);
}

static int do_clone_newuser(void *unused)
{
	(void)unused;
	long pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
	if (pid == 0)
		_exit(0);
	if (pid > 0)
		waitpid((pid_t)pid, NULL, 0);
	return pid < 0 ? -1 : 0;
}

static int do_clone3(void *unused)
{
	struct {
		uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack,
		    stack_size, tls;
	} args = {CLONE_NEWUSER, 0, 0, 0, SIGCHLD, 0, 0, 0};
	(void)unused;
	long pid = syscall(SYS_clone3, &args, sizeof args);
	if (pid == 0)
		_exit(0);
	if (pid > 0)
		waitpid((pid_t)pid, NULL, 0);
	return pid < 0 ? -1 : 0;
}

static int do_setns(void *unused)
{
	(void)unused;
	int fd = open("/proc/1/ns/mnt", O_RDONLY);
	if (fd < 0)
		return -1;
	return setns(fd, 0);
}

/* ------------------------------------------------------------ /proc, /sys */

static void attack_open_wronly(const char *path)
{
	/* never written: the open alone is the finding */
	result_fd(open(path, O_WRONLY));
}

/* masked files read as nothing; kallsyms would leak addresses */
static void attack_read(const char *path)
{
	char buf[4096];
	int fd = open(path, O_RDONLY | O_NONBLOCK);
	ssize_t n;
	if (fd < 0) {
		say("%s", errname(errno));
		return;
	}
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n < 0)
		say("%s", errname(errno));
	else if (n == 0)
		say("empty");
	else {
		buf[n] = 0;
		if (strstr(path, "kallsyms") && strncmp(buf, "0000000000000000", 16) == 0)
			say("no addresses");
		else
			say("read %zd bytes", n);
	}
}

/* ------------------------------------------------------------ processes */

static void attack_kill_host(int pid)
{
	result(kill(pid, SIGTERM));
}

static void attack_ptrace_host(int pid)
{
	long rc = ptrace(PTRACE_ATTACH, pid, 0, 0);
	int e = errno;
	if (rc == 0)
		ptrace(PTRACE_DETACH, pid, 0, 0);
	errno = e;
	result(rc);
}

static void attack_pidfd_host(int pid)
{
	result_fd(syscall(SYS_pidfd_open, pid, 0));
}

static void attack_vm_readv(int pid)
{
	char buf[8];
	struct iovec local = {buf, sizeof buf}, remote = {(void *)0x400000, sizeof buf};
	result(syscall(SYS_process_vm_readv, pid, &local, 1, &remote, 1, 0));
}

static void attack_kill_reaper(void)
{
	kill(1, SIGKILL);
	kill(1, SIGSTOP);
	usleep(100000);
	char buf[512];
	int fd = open("/proc/1/stat", O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0) {
		say("gone");
		return;
	}
	buf[n] = 0;
	char *state = strrchr(buf, ')');
	say("%s", state && state[2] == 'S' ? "survived" : "changed");
	kill(1, SIGCONT);   /* if the stop had landed */
}

/* PID 1 is dumpable on purpose (/proc/1/environ): attaching works like for
 * any process of jailed root's, and gains nothing the jail does not have */
static void attack_ptrace_reaper(void)
{
	int st;
	long rc = ptrace(PTRACE_SEIZE, 1, 0, 0);
	int e = errno;
	if (rc == 0 && ptrace(PTRACE_INTERRUPT, 1, 0, 0) == 0 &&
	    waitpid(1, &st, __WALL) == 1 && WIFSTOPPED(st))
		ptrace(PTRACE_DETACH, 1, 0, 0);
	errno = e;
	result(rc);
}

/* CVE-2019-5736: the reaper's exe is a sealed memfd, busy while it runs */
static void attack_pid1_exe_write(void)
{
	attack_open_wronly("/proc/1/exe");
}

/* The reaper's descriptors must be harmless too (no host file, no dir). */
static void attack_pid1_fds(void)
{
	list_fds("/proc/1/fd", 0);
}

/* ------------------------------------------------------------ kernel */

static void attack_kexec(void)
{
	result(syscall(SYS_kexec_load, 0, 0, NULL, 0));
}

static void attack_kexec_file(void)
{
	result(syscall(SYS_kexec_file_load, -1, -1, 0, "", 0));
}

static void attack_init_module(void)
{
	static char image[64];
	result(syscall(SYS_init_module, image, sizeof image, ""));
}

static void attack_finit_module(void)
{
	int fd = open("/probe", O_RDONLY);
	result(syscall(SYS_finit_module, fd, "", 0));
	close(fd);
}

static void attack_delete_module(void)
{
	result(syscall(SYS_delete_module, "probe_no_such_module", O_NONBLOCK));
}

static void attack_bpf(void)
{
	uint32_t attr[32] = {2 /* BPF_MAP_TYPE_ARRAY */, 4, 4, 1};
	result_fd(syscall(SYS_bpf, 0 /* BPF_MAP_CREATE */, attr, sizeof attr));
}

static void attack_perf(void)
{
	uint32_t attr[32];
	memset(attr, 0, sizeof attr);
	attr[0] = 1;       /* PERF_TYPE_SOFTWARE, config 0: CPU clock */
	attr[1] = 112;     /* size: PERF_ATTR_SIZE_VER5 */
	result_fd(syscall(SYS_perf_event_open, attr, 0, -1, -1, 0));
}

static void attack_keyctl(void)
{
	result(syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0));
}

static void attack_add_key(void)
{
	result(syscall(SYS_add_key, "user", "probe", "x", 1, KEY_SPEC_SESSION_KEYRING));
}

static void attack_userfaultfd(void)
{
	result_fd(syscall(SYS_userfaultfd, O_CLOEXEC));
}

static void attack_clock_settime(void)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);   /* the time it already is */
	result(syscall(SYS_clock_settime, CLOCK_REALTIME, &now));
}

static void attack_settimeofday(void)
{
	struct timeval now;
	gettimeofday(&now, NULL);
	result(syscall(SYS_settimeofday, &now, NULL));
}

static void attack_adjtimex(void)
{
	char buf[256];
	memset(buf, 0, sizeof buf);    /* modes 0: a read, still denied */
	result(syscall(SYS_adjtimex, buf));
}

static void attack_swapon(void)
{
	int fd = open("/tmp/.probe-swap", O_CREAT | O_WRONLY, 0600);
	if (fd >= 0)
		close(fd);
	long rc = syscall(SYS_swapon, "/tmp/.probe-swap", 0);
	int e = errno;
	unlink("/tmp/.probe-swap");
	errno = e;
	result(rc);
}

static void attack_reboot(void)
{
	/* a bad magic: the kernel checks CAP_SYS_BOOT first, then rejects it */
	result(syscall(SYS_reboot, 0, 0, 0x01234567, NULL));
}

static void attack_syslog(void)
{
	char buf[64];
	result(syscall(SYS_syslog, SYSLOG_ACTION_READ_ALL, buf, sizeof buf));
}

static void attack_iopl(void)
{
	result(syscall(SYS_iopl, 3));
}

static void attack_ioperm(void)
{
	result(syscall(SYS_ioperm, 0x70, 2, 1));
}

static void attack_acct(void)
{
	result(syscall(SYS_acct, NULL));
}

static void attack_quotactl(void)
{
	result(syscall(SYS_quotactl, 0x800007 /* Q_SYNC */, NULL, 0, NULL));
}

static void attack_personality(void)
{
	result(syscall(SYS_personality, 0x0400000 /* READ_IMPLIES_EXEC */));
}

static void attack_fanotify(void)
{
	result_fd(syscall(SYS_fanotify_init, FAN_CLASS_CONTENT_, O_RDONLY));
}

static int do_int80(void *unused)
{
	long ret;
	(void)unused;
	/* i386 getpid (20) through the 32-bit entry point */
	__asm__ volatile("int $0x80" : "=a"(ret) : "0"(20L) : "memory");
	return 0;
}

static int do_x32(void *unused)
{
	(void)unused;
	syscall(X32_SYSCALL_BIT | 39 /* getpid */);
	return 0;
}

static void attack_capset(void)
{
	struct {
		uint32_t version;
		int pid;
	} hdr = {0x20080522, 0};
	struct {
		uint32_t eff, perm, inh;
	} data[2];
	if (syscall(SYS_capget, &hdr, data) < 0) {
		result(-1);
		return;
	}
	data[0].eff |= 1u << 21;    /* CAP_SYS_ADMIN */
	data[0].perm |= 1u << 21;
	result(syscall(SYS_capset, &hdr, data));
}

static void attack_bset(int cap)
{
	long rc = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
	if (rc < 0)
		result(rc);
	else
		say("%s", rc ? "kept" : "dropped");
}

/* ------------------------------------------------------------ network */

static void attack_socket(int family, int type, int proto)
{
	result_fd(socket(family, type, proto));
}

static void attack_siocsifaddr(const char *ifname)
{
	struct ifreq ifr;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	memset(&ifr, 0, sizeof ifr);
	strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
	sin->sin_family = AF_INET;
	inet_pton(AF_INET, "198.51.100.250", &sin->sin_addr);
	result(ioctl(fd, SIOCSIFADDR_, &ifr));
	close(fd);
}

/* one rtnetlink request; the kernel's ack carries the errno */
static void rtnl(void *req, size_t len)
{
	char buf[4096];
	struct sockaddr_nl {
		unsigned short family, pad;
		uint32_t pid, groups;
	} kernel = {AF_NETLINK, 0, 0, 0};
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE_);
	ssize_t n;
	if (fd < 0) {
		result(-1);
		return;
	}
	if (sendto(fd, req, len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) {
		result_fd(-1);
		close(fd);
		return;
	}
	n = recv(fd, buf, sizeof buf, 0);
	close(fd);
	if (n < 16 + 4) {
		say("no answer");
		return;
	}
	if (*(uint16_t *)(buf + 4) != NLMSG_ERROR_) {
		say("unexpected answer");
		return;
	}
	int err = *(int32_t *)(buf + 16);
	if (err == 0)
		say("OK");
	else
		say("%s", errname(-err));
}

static void attack_rtnl_addaddr(const char *ifname)
{
	struct {
		uint32_t len;
		uint16_t type, flags;
		uint32_t seq, pid;
		uint8_t family, prefixlen, ifa_flags, scope;
		uint32_t index;
		uint16_t rta_len, rta_type;
		uint8_t addr[4];
	} req;
	memset(&req, 0, sizeof req);
	req.len = sizeof req;
	req.type = RTM_NEWADDR_;
	req.flags = NLM_F_REQUEST_ | NLM_F_ACK_ | NLM_F_CREATE_ | NLM_F_EXCL_;
	req.seq = 1;
	req.family = AF_INET;
	req.prefixlen = 32;
	req.index = if_nametoindex(ifname);
	req.rta_len = 8;
	req.rta_type = IFA_LOCAL_;
	inet_pton(AF_INET, "198.51.100.251", req.addr);
	rtnl(&req, sizeof req);
}

static void attack_rtnl_delroute(void)
{
	struct {
		uint32_t len;
		uint16_t type, flags;
		uint32_t seq, pid;
		uint8_t family, dst_len, src_len, tos, table, protocol, scope, type_;
		uint32_t flags_;
	} req;
	memset(&req, 0, sizeof req);
	req.len = sizeof req;
	req.type = RTM_DELROUTE_;
	req.flags = NLM_F_REQUEST_ | NLM_F_ACK_;
	req.seq = 2;
	req.family = AF_INET;
	req.table = 254;       /* main: the default route */
	req.scope = 0xff;      /* RT_SCOPE_NOWHERE: match any */
	rtnl(&req, sizeof req);
}

static void attack_rtnl_linkdown(const char *ifname)
{
	struct {
		uint32_t len;
		uint16_t type, flags;
		uint32_t seq, pid;
		uint8_t family, pad;
		uint16_t type_;
		int32_t index;
		uint32_t flags_, change;
	} req;
	memset(&req, 0, sizeof req);
	req.len = sizeof req;
	req.type = RTM_NEWLINK_;
	req.flags = NLM_F_REQUEST_ | NLM_F_ACK_;
	req.seq = 3;
	req.index = (int32_t)if_nametoindex(ifname);
	req.change = IFF_UP;       /* flags 0: down */
	rtnl(&req, sizeof req);
}

/* a TCP connection toward an outside address: the host has no route for it */
static void attack_outside(const char *addr)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(80)};
	int fd = socket(AF_INET, SOCK_STREAM, 0), err = 0;
	socklen_t len = sizeof err;
	inet_pton(AF_INET, addr, &sin.sin_addr);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof sin) == 0) {
		close(fd);
		say("CONNECTED");
		return;
	}
	if (errno != EINPROGRESS) {
		result_fd(-1);
		close(fd);
		return;
	}
	/* up to 20 s: SYNs are resent at 1, 3, 7, 15 s, so an ICMP error the
	 * host rate-limited once still comes back for a later one */
	for (int i = 0; i < 200; i++) {
		fd_set w;
		struct timeval tv = {0, 100000};
		FD_ZERO(&w);
		FD_SET(fd, &w);
		if (select(fd + 1, NULL, &w, NULL, &tv) > 0)
			break;
	}
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
	close(fd);
	if (err == 0)
		say("CONNECTED");
	else if (err == EINPROGRESS)
		say("ETIMEDOUT");
	else
		say("%s", errname(err));
}

static void attack_bind(const char *addr, int port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	inet_pton(AF_INET, addr, &sin.sin_addr);
	long rc = bind(fd, (struct sockaddr *)&sin, sizeof sin);
	result_fd(rc < 0 ? rc : fd);
	if (rc < 0)
		close(fd);
}

static void attack_ip_transparent(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	long rc = setsockopt(fd, SOL_IP, 19 /* IP_TRANSPARENT */, &one, sizeof one);
	int e = errno;
	close(fd);
	errno = e;
	result(rc);
}

/* ICMP echo to ADDR over a raw (or ICMP datagram) socket: OK on a reply */
static uint16_t csum(const void *data, size_t len)
{
	const uint16_t *p = data;
	uint32_t sum = 0;
	for (; len > 1; len -= 2)
		sum += *p++;
	if (len)
		sum += *(const uint8_t *)p;
	sum = (sum >> 16) + (sum & 0xffff);
	sum += sum >> 16;
	return (uint16_t)~sum;
}

static void attack_ping(const char *addr, int type)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	unsigned char pkt[16] = {8, 0, 0, 0, 0x12, 0x34, 0, 1, 'l', 'i', 'n', 'j', 'a', 'i', 'l', 0};
	unsigned char buf[256];
	int fd = socket(AF_INET, type, IPPROTO_ICMP);
	uint16_t c;
	if (fd < 0) {
		result(-1);
		return;
	}
	inet_pton(AF_INET, addr, &sin.sin_addr);
	c = csum(pkt, sizeof pkt);
	memcpy(pkt + 2, &c, 2);
	if (sendto(fd, pkt, sizeof pkt, 0, (struct sockaddr *)&sin, sizeof sin) < 0) {
		result_fd(-1);
		close(fd);
		return;
	}
	for (int i = 0; i < 20; i++) {
		fd_set r;
		struct timeval tv = {0, 100000};
		ssize_t n;
		FD_ZERO(&r);
		FD_SET(fd, &r);
		if (select(fd + 1, &r, NULL, NULL, &tv) <= 0)
			continue;
		n = recv(fd, buf, sizeof buf, 0);
		if (n <= 0)
			continue;
		/* raw sockets deliver the IP header; datagram sockets do not */
		unsigned char *icmp = type == SOCK_RAW ? buf + (buf[0] & 0xf) * 4 : buf;
		if (icmp[0] == 0) {        /* echo reply */
			close(fd);
			say("OK");
			return;
		}
	}
	close(fd);
	say("no reply");
}

/* ------------------------------------------------------------ terminals */

static int do_tiocsti(void *cmdp)
{
	unsigned long cmd = *(unsigned long *)cmdp;
	char c = '#';
	int master, slave;
	if (isatty(0) && cmd != TIOCLINUX_) {
		/* the terminal the jail was given: jail-private (a pty of its devpts) */
		if (ioctl(0, cmd, &c) == 0)
			return 0;
		if (errno != EPERM && errno != EIO)
			return -1;
	}
	/* a pty of our own, made our controlling terminal: without the filter
	 * (and with dev.tty.legacy_tiocsti=1) the kernel would allow this */
	setsid();
	master = posix_openpt(O_RDWR | O_NOCTTY);
	if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0)
		return -1;
	slave = open(ptsname(master), O_RDWR);  /* becomes the controlling tty */
	if (slave < 0)
		return -1;
	if (cmd == TIOCLINUX_) {
		char sub = 6;   /* TIOCL_GETSHIFTSTATE: a read */
		return ioctl(slave, cmd, &sub);
	}
	return ioctl(slave, cmd, &c);
}

static void attack_tty(unsigned long cmd)
{
	in_child(do_tiocsti, &cmd);
}

/* ------------------------------------------------------------ io_uring */

static void attack_io_uring(void)
{
	char params[120];
	memset(params, 0, sizeof params);
	/* would go on with IORING_OP_SOCKET(AF_PACKET): setup already fails */
	result_fd(syscall(SYS_io_uring_setup, 4, params));
}

/* ------------------------------------------------------------ races */

static int stop_requested(const char *stopfile)
{
	struct stat st;
	return stat(stopfile, &st) == 0;
}

/* Is the open file FD the file PATH names inside the jail? */
static int is_jail_file(int fd, const char *path)
{
	struct stat a, b;
	if (fstat(fd, &a) < 0 || stat(path, &b) < 0)
		return 0;
	return same_file(&a, &b);
}

/* CVE-2019-5736 and CVE-2016-9962 against jexec: watch every new process of
 * the jail while the host runs jexec again and again; a process whose
 * executable is not a file of the jail (the joiner's python, before it
 * execs the command) must never be opened (exe, mem) or attached. */
static void race(const char *stopfile, int use_ptrace)
{
	int self = getpid(), caught = 0, seen = 0, loops = 0;
	char foreign[300] = "";
	time_t deadline = time(NULL) + 60;
	printf("#ready %s\n", current);
	fflush(stdout);
	while (!stop_requested(stopfile) && time(NULL) < deadline && !foreign[0]) {
		DIR *d = opendir("/proc");
		struct dirent *e;
		loops++;
		while (d && (e = readdir(d))) {
			char path[64], link[256];
			int pid = atoi(e->d_name), fd, st;
			ssize_t n;
			if (pid <= 1 || pid == self)
				continue;
			snprintf(path, sizeof path, "/proc/%d/exe", pid);
			if (use_ptrace) {
				/* SEIZE: the same permission check as ATTACH, and no
				 * SIGSTOP left pending for after the detach */
				if (ptrace(PTRACE_SEIZE, pid, 0, 0) < 0) {
					if (errno == EPERM)
						caught++;
					continue;
				}
				seen++;
			}
			fd = open(path, O_RDONLY);
			if (fd < 0) {
				if (errno == EACCES || errno == EPERM)
					caught++;
			} else {
				n = readlink(path, link, sizeof link - 1);
				link[n < 0 ? 0 : n] = 0;
				if (!is_jail_file(fd, link)) {
					/* a host file: also try the write side (never written) */
					int w = open(path, O_WRONLY);
					snprintf(foreign, sizeof foreign, "%s%s", link,
						 w >= 0 ? " (writable)" : "");
					if (w >= 0)
						close(w);
				}
				close(fd);
				if (!use_ptrace)
					seen++;
			}
			if (use_ptrace) {
				char mem[64], byte;
				snprintf(mem, sizeof mem, "/proc/%d/mem", pid);
				fd = open(mem, O_RDONLY);
				if (fd >= 0) {
					/* reading the target's memory is allowed only for jail
					 * programs; a foreign exe was flagged above */
					if (pread(fd, &byte, 1, 0x400000) < 0)
						(void)0;
					close(fd);
				}
				/* detaching needs a ptrace-stop: interrupt, wait, detach */
				if (ptrace(PTRACE_INTERRUPT, pid, 0, 0) == 0 &&
				    waitpid(pid, &st, __WALL) == pid && WIFSTOPPED(st))
					ptrace(PTRACE_DETACH, pid, 0, 0);
			}
		}
		if (d)
			closedir(d);
	}
	fprintf(stderr, "%s: %d scans, %d jail processes opened, %d refused\n", current,
		loops, seen, caught);
	if (foreign[0])
		say("ESCAPED %s", foreign);
	else
		say("clean");
}

/* ------------------------------------------------------------ allowed */

static int do_kill_other_uid(void *unused)
{
	(void)unused;
	pid_t pid = fork();
	if (pid == 0) {
		if (setuid(65534) < 0)
			_exit(1);
		pause();
		_exit(0);
	}
	usleep(20000);
	int rc = kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return rc;
}

static int do_ptrace_own(void *unused)
{
	(void)unused;
	pid_t pid = fork();
	if (pid == 0) {
		pause();
		_exit(0);
	}
	long rc = ptrace(PTRACE_ATTACH, pid, 0, 0);
	int e = errno;
	if (rc == 0) {
		waitpid(pid, NULL, __WALL);
		ptrace(PTRACE_DETACH, pid, 0, 0);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	errno = e;
	return (int)rc;
}

static void attack_chown(void)
{
	int fd = open("/tmp/.probe-chown", O_CREAT | O_WRONLY, 0600);
	close(fd);
	long rc = chown("/tmp/.probe-chown", 65534, 65534);
	int e = errno;
	unlink("/tmp/.probe-chown");
	errno = e;
	result(rc);
}

static int do_chroot_inside(void *unused)
{
	(void)unused;
	return chroot("/tmp");
}

static int do_setuid_change(void *unused)
{
	(void)unused;
	gid_t g = 65534;
	if (setgroups(1, &g) < 0 || setgid(65534) < 0)
		return -1;
	return setuid(65534);
}

static void attack_mkfifo(void)
{
	long rc = mkfifo("/tmp/.probe-fifo", 0600);
	int e = errno;
	unlink("/tmp/.probe-fifo");
	errno = e;
	result(rc);
}

static void attack_rlimit_lower(void)
{
	struct rlimit r;
	getrlimit(RLIMIT_NOFILE, &r);
	r.rlim_cur = r.rlim_cur > 64 ? 64 : r.rlim_cur;
	result(setrlimit(RLIMIT_NOFILE, &r));
}

/* ------------------------------------------------------------ knobs */

static void knob_sethostname(const char *name)
{
	result(sethostname(name, strlen(name)));
}

static void knob_sysvipc(void)
{
	int m = msgget(IPC_PRIVATE, 0600), e;
	if (m < 0) {
		result(-1);
		return;
	}
	msgctl(m, IPC_RMID, NULL);
	int s = semget(IPC_PRIVATE, 1, 0600);
	int h = shmget(IPC_PRIVATE, 4096, 0600);
	e = errno;
	if (s >= 0)
		semctl(s, 0, IPC_RMID);
	if (h >= 0)
		shmctl(h, IPC_RMID, NULL);
	errno = e;
	result(s < 0 || h < 0 ? -1 : 0);
}

/* immutable, then append-only, on a file of the jail; cleared at once */
static void knob_chflags(const char *path)
{
	int fd = open(path, O_CREAT | O_RDONLY, 0600), flags = 0, rc = -1, e;
	if (fd < 0) {
		result(-1);
		return;
	}
	if (ioctl(fd, FS_IOC_GETFLAGS_, &flags) < 0) {
		e = errno;
		close(fd);
		unlink(path);
		say("unsupported (%s)", errname(e));
		return;
	}
	int want = flags | FS_IMMUTABLE_FL_;
	rc = ioctl(fd, FS_IOC_SETFLAGS_, &want);
	e = errno;
	if (rc == 0) {
		int got = 0, append = flags | FS_APPEND_FL_;
		ioctl(fd, FS_IOC_GETFLAGS_, &got);
		if (!(got & FS_IMMUTABLE_FL_))
			e = EINVAL, rc = -1;
		if (ioctl(fd, FS_IOC_SETFLAGS_, &append) < 0)
			e = errno, rc = -1;
		ioctl(fd, FS_IOC_SETFLAGS_, &flags);    /* undo */
	}
	close(fd);
	unlink(path);
	errno = e;
	result(rc);
}

/* the jail's mount table: every mount point is one of the jail's own */
static void knob_statfs(void)
{
	static const char *ours[] = {"/", "/dev", "/dev/pts", "/dev/shm", "/proc", "/sys", NULL};
	char line[1024], bad[520] = "";
	int n = 0;
	struct statfs sf;
	FILE *f = fopen("/proc/self/mounts", "r");
	if (!f || statfs("/", &sf) < 0) {
		result(-1);
		return;
	}
	while (fgets(line, sizeof line, f)) {
		char dev[256], dir[512];
		int ok = 0;
		if (sscanf(line, "%255s %511s", dev, dir) != 2)
			continue;
		n++;
		for (int i = 0; ours[i]; i++)
			if (strcmp(dir, ours[i]) == 0)
				ok = 1;
		if (strncmp(dir, "/proc/", 6) == 0)
			ok = 1;   /* the masks and read-only binds over our own /proc */
		if (!ok && !bad[0])
			snprintf(bad, sizeof bad, "%s", dir);
	}
	fclose(f);
	if (bad[0])
		say("foreign mount %s", bad);
	else
		say("jail-only");
}

/* LINJAIL_JAILED and LINJAIL_KNOBS from PID 1's environment */
static void knob_environ(void)
{
	char buf[8192], out[600] = "";
	int fd = open("/proc/1/environ", O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
	if (fd >= 0)
		close(fd);
	if (n < 0) {
		result(-1);
		return;
	}
	buf[n] = 0;
	for (char *p = buf; p < buf + n; p += strlen(p) + 1)
		if (strncmp(p, "LINJAIL_", 8) == 0)
			append(out, sizeof out, " ", p);
	say("%s", out[0] ? out : "none");
}

/* ------------------------------------------------------------ more */

/* issue 11: a host file that reached the jail through a descriptor (a
 * test-only leak: SOCK received over the stream socket at fd SOCK).  Jailed
 * root tries to make it its own: fchmod, fchown to jail uid 1001, and open
 * it again through /proc/self/fd (for reading); a write through the O_RDWR
 * descriptor it holds is not stopped by any of that (which is why no host
 * descriptor ever reaches a jail, issue 7).  The file is the test's own. */
static void attack_fd_leak(int sock)
{
	char buf[1], cmsgbuf[CMSG_SPACE(sizeof(int))], path[64], out[200] = "";
	struct iovec iov = { buf, 1 };
	struct msghdr msg = { 0 };
	struct cmsghdr *c;
	int fd = -1, again;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cmsgbuf;
	msg.msg_controllen = sizeof cmsgbuf;
	if (recvmsg(sock, &msg, 0) < 0) {
		say("recvmsg %s", errname(errno));
		return;
	}
	c = CMSG_FIRSTHDR(&msg);
	if (c && c->cmsg_type == SCM_RIGHTS)
		memcpy(&fd, CMSG_DATA(c), sizeof fd);
	if (fd < 0) {
		say("no descriptor");
		return;
	}
	append(out, sizeof out, " ", "fchmod=");
	append(out, sizeof out, "", fchmod(fd, 0644) == 0 ? "OK" : errname(errno));
	append(out, sizeof out, " ", "fchown=");
	append(out, sizeof out, "", fchown(fd, 1001, 1001) == 0 ? "OK" : errname(errno));
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	again = open(path, O_RDONLY);
	append(out, sizeof out, " ", "reopen=");
	append(out, sizeof out, "", again >= 0 ? "OK" : errname(errno));
	if (again >= 0)
		close(again);
	append(out, sizeof out, " ", "write=");
	append(out, sizeof out, "", write(fd, "j", 1) == 1 ? "OK" : errname(errno));
	say("%s", out);
}

/* issue 11: take every inotify instance the kernel lets this uid have,
 * report how many and why it stopped ("#held N ERRNO"), and hold them
 * until the test closes our stdin; the test meanwhile asks for one as
 * host root.  Then they are all closed. */
static void attack_inotify_exhaust(void)
{
	int n = 0, fd;
	char c;
	while (n < 100000 && (fd = inotify_init1(IN_CLOEXEC)) >= 0)
		n++;
	printf("#held %d %s\n", n, errname(errno));
	fflush(stdout);
	while (read(0, &c, 1) > 0)
		;
	say("%d", n);
}

/* the masks over /proc files are the host's /dev/null inode: changing its
 * mode or owner (to what it already is) must fail */
static void attack_chmod_masked(void)
{
	struct stat st;
	if (stat("/proc/keys", &st) < 0) {
		result(-1);
		return;
	}
	result(chmod("/proc/keys", st.st_mode & 07777));
}

static void attack_chown_masked(void)
{
	struct stat st;
	if (stat("/proc/keys", &st) < 0) {
		result(-1);
		return;
	}
	result(chown("/proc/keys", st.st_uid, st.st_gid));
}

/* FITHAW on the root's (host) file system: CAP_SYS_ADMIN is checked first,
 * then EINVAL for a file system that is not frozen; never FIFREEZE */
static void attack_fithaw(void)
{
	int fd = open("/", O_RDONLY | O_DIRECTORY);
	result(ioctl(fd, 0xC0045878UL /* FITHAW */, 0));
	close(fd);
}

/* a directory the OCI runtimes mask: listed as empty */
static void attack_list_dir(const char *path)
{
	int n = 0;
	DIR *d = opendir(path);
	struct dirent *e;
	if (!d) {
		say("%s", errname(errno));
		return;
	}
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	if (n)
		say("%d entries", n);
	else
		say("empty");
}

/* a host abstract unix socket: abstract names belong to the network
 * namespace, so the jail's is another world */
static void attack_abstract_unix(const char *name)
{
	struct sockaddr_un {
		unsigned short family;
		char path[108];
	} sun;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	size_t len = strlen(name);
	memset(&sun, 0, sizeof sun);
	sun.family = AF_UNIX;
	memcpy(sun.path + 1, name, len > 106 ? 106 : len);
	long rc = connect(fd, (struct sockaddr *)&sun, (socklen_t)(2 + 1 + len));
	int e = errno;
	close(fd);
	errno = e;
	result(rc);
}

/* the immutable flag through the xflags interface (FS_IOC_FSSETXATTR) */
static void knob_chflags_xattr(const char *path)
{
	struct {
		uint32_t xflags, extsize, nextents, projid, cowextsize;
		unsigned char pad[8];
	} fa, orig;
	int fd = open(path, O_CREAT | O_RDONLY, 0600), rc, e;
	if (fd < 0) {
		result(-1);
		return;
	}
	if (ioctl(fd, 0x801C581FUL /* FS_IOC_FSGETXATTR */, &orig) < 0) {
		e = errno;
		close(fd);
		unlink(path);
		say("unsupported (%s)", errname(e));
		return;
	}
	fa = orig;
	fa.xflags |= 0x8;    /* FS_XFLAG_IMMUTABLE */
	rc = ioctl(fd, 0x401C5820UL /* FS_IOC_FSSETXATTR */, &fa);
	e = errno;
	if (rc == 0)
		ioctl(fd, 0x401C5820UL, &orig);    /* undo */
	close(fd);
	unlink(path);
	errno = e;
	result(rc);
}

/* file_setattr(2) (Linux 6.17): the same flag by path */
static void knob_file_setattr(const char *path)
{
	struct {
		uint64_t xflags;
		uint32_t extsize, nextents, projid, cowextsize;
	} fa;
	int fd = open(path, O_CREAT | O_RDONLY, 0600);
	long rc;
	int e;
	close(fd);
	memset(&fa, 0, sizeof fa);
	rc = syscall(468 /* file_getattr */, AT_FDCWD, path, &fa, sizeof fa, 0);
	if (rc < 0 && errno == ENOSYS) {
		unlink(path);
		say("unsupported (ENOSYS)");
		return;
	}
	fa.xflags |= 0x8;
	rc = syscall(469 /* file_setattr */, AT_FDCWD, path, &fa, sizeof fa, 0);
	e = errno;
	if (rc == 0) {
		fa.xflags &= ~0x8ULL;
		syscall(469, AT_FDCWD, path, &fa, sizeof fa, 0);
	}
	unlink(path);
	errno = e;
	result(rc);
}

/* where the process stands: "/" of the jail, never an unreachable host dir */
static void attack_cwd(void)
{
	char buf[512];
	struct stat a, b;
	if (!getcwd(buf, sizeof buf)) {
		say("%s", errname(errno));
		return;
	}
	if (stat(".", &a) < 0 || stat("/", &b) < 0 || !same_file(&a, &b))
		say("%s (not the root)", buf);
	else
		say("%s", buf);
}

/* ------------------------------------------------------------ source addresses */

/* ADDR (IPv4 or IPv6, "fe80::1%eth0" with its interface) and PORT as a
 * socket address; its length */
static socklen_t sockaddr_of(const char *addr, int port, struct sockaddr_storage *ss)
{
	char host[64];
	const char *scope = strchr(addr, '%');
	memset(ss, 0, sizeof *ss);
	snprintf(host, sizeof host, "%.*s", scope ? (int)(scope - addr) : 63, addr);
	if (strchr(host, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		inet_pton(AF_INET6, host, &s6->sin6_addr);
		if (scope)
			s6->sin6_scope_id = if_nametoindex(scope + 1);
		return sizeof *s6;
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	s4->sin_family = AF_INET;
	s4->sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, host, &s4->sin_addr);
	return sizeof *s4;
}

/* one UDP datagram TEXT from SRC (any address: IP_FREEBIND / IPV6_FREEBIND
 * need no privilege) to DST:PORT; OK once the kernel sent it.  Whether it
 * arrives is the receiver's to say. */
static void attack_udp_send(const char *src, const char *dst, int port, const char *text)
{
	struct sockaddr_storage from, to;
	socklen_t tolen = sockaddr_of(dst, port, &to), fromlen = sockaddr_of(src, 0, &from);
	int six = to.ss_family == AF_INET6, one = 1;
	int fd = socket(to.ss_family, SOCK_DGRAM, 0);
	if (fd < 0) {
		result(-1);
		return;
	}
	if (six)
		setsockopt(fd, SOL_IPV6, 78 /* IPV6_FREEBIND */, &one, sizeof one);
	else
		setsockopt(fd, SOL_IP, IP_FREEBIND, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&from, fromlen) < 0 ||
	    sendto(fd, text, strlen(text), 0, (struct sockaddr *)&to, tolen) < 0) {
		result_fd(-1);
		return;
	}
	result_fd(fd);
}

/* an IPv4 or IPv6 header and a UDP datagram TEXT from SRC to DST:PORT, built
 * by hand into PKT (600 bytes); its length */
static size_t build_udp(const char *src, const char *dst, int port, const char *text,
			unsigned char *pkt)
{
	struct sockaddr_storage from, to;
	size_t n = strlen(text) > 500 ? 500 : strlen(text), hdr;
	uint16_t udplen = (uint16_t)(8 + n), sum;
	unsigned char *u, pseudo[40 + 8 + 500];
	sockaddr_of(src, 0, &from);
	sockaddr_of(dst, port, &to);
	memset(pkt, 0, 600);
	if (to.ss_family == AF_INET6) {
		struct sockaddr_in6 *f = (struct sockaddr_in6 *)&from, *t = (struct sockaddr_in6 *)&to;
		hdr = 40;
		pkt[0] = 0x60;
		pkt[4] = (unsigned char)(udplen >> 8);
		pkt[5] = (unsigned char)udplen;
		pkt[6] = IPPROTO_UDP;
		pkt[7] = 64;
		memcpy(pkt + 8, &f->sin6_addr, 16);
		memcpy(pkt + 24, &t->sin6_addr, 16);
		/* UDP over IPv6 needs its checksum: pseudo header, then UDP */
		memset(pseudo, 0, sizeof pseudo);
		memcpy(pseudo, pkt + 8, 32);
		pseudo[34] = (unsigned char)(udplen >> 8);
		pseudo[35] = (unsigned char)udplen;
		pseudo[39] = IPPROTO_UDP;
		u = pseudo + 40;
	} else {
		struct sockaddr_in *f = (struct sockaddr_in *)&from, *t = (struct sockaddr_in *)&to;
		hdr = 20;
		pkt[0] = 0x45;
		pkt[2] = (unsigned char)((hdr + udplen) >> 8);
		pkt[3] = (unsigned char)(hdr + udplen);
		pkt[8] = 64;
		pkt[9] = IPPROTO_UDP;
		memcpy(pkt + 12, &f->sin_addr, 4);
		memcpy(pkt + 16, &t->sin_addr, 4);
		sum = csum(pkt, hdr);      /* a raw socket would fill it in; a frame not */
		memcpy(pkt + 10, &sum, 2);
		u = pkt + hdr;             /* UDP checksum 0: none, as IPv4 allows */
	}
	u[0] = 0x30;                       /* source port 12345 */
	u[1] = 0x39;
	u[2] = (unsigned char)(port >> 8);
	u[3] = (unsigned char)port;
	u[4] = (unsigned char)(udplen >> 8);
	u[5] = (unsigned char)udplen;
	memcpy(u + 8, text, n);
	if (to.ss_family == AF_INET6) {
		sum = csum(u - 40, 40 + udplen);
		memcpy(u + 6, &sum, 2);
		memcpy(pkt + hdr, u, udplen);
	}
	return hdr + udplen;
}

/* the same datagram built by hand on a raw socket (IPPROTO_RAW: the header
 * is ours, IP_HDRINCL / IPV6_HDRINCL), the way around IPv4's refusal of a
 * foreign source on a datagram socket; needs allow_raw_sockets=1 */
static void attack_udp_raw(const char *src, const char *dst, int port, const char *text)
{
	struct sockaddr_storage to;
	socklen_t tolen = sockaddr_of(dst, 0, &to);  /* a raw destination has port 0 */
	unsigned char pkt[600];
	size_t len = build_udp(src, dst, port, text, pkt);
	int fd = socket(to.ss_family, SOCK_RAW, IPPROTO_RAW);
	if (fd < 0) {
		result(-1);
		return;
	}
	long rc = sendto(fd, pkt, len, 0, (struct sockaddr *)&to, tolen);
	int e = errno;
	close(fd);
	errno = e;
	result(rc);
}

/* the same datagram as an Ethernet frame to MAC on interface IF, from a
 * packet socket (no routing, no source check of the kernel's); needs
 * allow_raw_sockets=1 and socket_unixiproute_only=0 */
static void attack_frame_send(const char *ifname, const char *mac, const char *src,
			      const char *dst, int port, const char *text)
{
	struct sockaddr_ll_ {
		unsigned short family, protocol;
		int ifindex;
		unsigned short hatype;
		unsigned char pkttype, halen, addr[8];
	} ll;
	unsigned char pkt[600];
	size_t len = build_udp(src, dst, port, text, pkt);
	unsigned short proto = strchr(dst, ':') ? 0x86dd : 0x0800;
	int fd = socket(AF_PACKET_, SOCK_DGRAM, htons(proto));
	if (fd < 0) {
		result(-1);
		return;
	}
	memset(&ll, 0, sizeof ll);
	ll.family = AF_PACKET_;
	ll.protocol = htons(proto);
	ll.ifindex = (int)if_nametoindex(ifname);
	ll.halen = 6;
	sscanf(mac, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &ll.addr[0], &ll.addr[1], &ll.addr[2],
	       &ll.addr[3], &ll.addr[4], &ll.addr[5]);
	long rc = sendto(fd, pkt, len, 0, (struct sockaddr *)&ll, sizeof ll);
	int e = errno;
	close(fd);
	errno = e;
	result(rc);
}

/* datagrams to ADDR:PORT, one line each ("udp-recv: SOURCE TEXT"), until
 * one says END or MS milliseconds pass without any; "# bound" when ready */
static void attack_udp_recv(const char *addr, int port, int ms, const char *end)
{
	struct sockaddr_storage me, peer;
	socklen_t len = sockaddr_of(addr, port, &me);
	int fd = socket(me.ss_family, SOCK_DGRAM, 0);
	char buf[512], host[64];
	if (fd < 0 || bind(fd, (struct sockaddr *)&me, len) < 0) {
		result(-1);
		return;
	}
	(void)!write(1, "# bound\n", 8);
	for (;;) {
		fd_set r;
		struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
		socklen_t plen = sizeof peer;
		ssize_t n;
		FD_ZERO(&r);
		FD_SET(fd, &r);
		if (select(fd + 1, &r, NULL, NULL, &tv) <= 0)
			break;
		n = recvfrom(fd, buf, sizeof buf - 1, 0, (struct sockaddr *)&peer, &plen);
		if (n < 0)
			break;
		buf[n] = 0;
		if (peer.ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&peer)->sin6_addr, host, sizeof host);
		else
			inet_ntop(AF_INET, &((struct sockaddr_in *)&peer)->sin_addr, host, sizeof host);
		say("%s %s", host, buf);
		if (strcmp(buf, end) == 0)
			break;
	}
	close(fd);
	say("done");
}

/* ------------------------------------------------------------ dispatch */

static void run(int argc, char **argv)
{
	const char *a = argv[0];
	current = a;
#define IS(name) (strcmp(a, name) == 0)
	if (IS("chroot-escape")) {
		marker = argc > 1 ? argv[1] : NULL;
		attack_chroot_escape();
	} else if (IS("open-by-handle"))
		attack_open_by_handle();
	else if (IS("proc-root-host"))
		attack_proc_link("root/", arg_int(argv, 1, argc));
	else if (IS("proc-cwd-host"))
		attack_proc_link("cwd/", arg_int(argv, 1, argc));
	else if (IS("proc-fd-host"))
		attack_proc_link("fd/0", arg_int(argv, 1, argc));
	else if (IS("host-file")) {
		marker = arg_str(argv, 1, argc);
		attack_read_host_marker();
	} else if (IS("leaked-fds"))
		list_fds("/proc/self/fd", 1);
	else if (IS("pid1-fds"))
		attack_pid1_fds();
	else if (IS("planted-dev"))
		attack_planted_dev(arg_str(argv, 1, argc));
	else if (IS("mknod-mem"))
		attack_mknod(makedev(1, 1), S_IFCHR);
	else if (IS("mknod-kmsg"))
		attack_mknod(makedev(1, 11), S_IFCHR);
	else if (IS("mknod-disk"))
		attack_mknod(makedev(254, 0), S_IFBLK);
	else if (IS("mount"))
		attack_mount();
	else if (IS("remount-proc-sys"))
		attack_remount_proc_sys();
	else if (IS("umount"))
		attack_umount();
	else if (IS("pivot-root"))
		attack_pivot_root();
	else if (IS("move-mount"))
		attack_move_mount();
	else if (IS("open-tree"))
		attack_open_tree();
	else if (IS("fsopen"))
		attack_fsopen();
	else if (IS("mount-setattr"))
		attack_mount_setattr();
	else if (IS("release-agent"))
		attack_release_agent();
	else if (IS("unshare-user"))
		in_child(do_unshare, (void *)(long)CLONE_NEWUSER);
	else if (IS("unshare-mnt"))
		in_child(do_unshare, (void *)(long)CLONE_NEWNS);
	else if (IS("unshare-pid"))
		in_child(do_unshare, (void *)(long)CLONE_NEWPID);
	else if (IS("unshare-net"))
		in_child(do_unshare, (void *)(long)CLONE_NEWNET);
	else if (IS("unshare-uts"))
		in_child(do_unshare, (void *)(long)CLONE_NEWUTS);
	else if (IS("unshare-ipc"))
		in_child(do_unshare, (void *)(long)CLONE_NEWIPC);
	else if (IS("unshare-cgroup"))
		in_child(do_unshare, (void *)(long)CLONE_NEWCGROUP_);
	else if (IS("unshare-time"))
		in_child(do_unshare, (void *)(long)CLONE_NEWTIME_);
	else if (IS("clone-newuser"))
		in_child(do_clone_newuser, NULL);
	else if (IS("clone3-newuser"))
		in_child(do_clone3, NULL);
	else if (IS("setns"))
		in_child(do_setns, NULL);
	else if (IS("core-pattern"))
		attack_open_wronly("/proc/sys/kernel/core_pattern");
	else if (IS("proc-sys-net"))
		attack_open_wronly("/proc/sys/net/ipv4/ip_forward");
	else if (IS("sysrq-trigger"))
		attack_open_wronly("/proc/sysrq-trigger");
	else if (IS("uevent-helper"))
		attack_open_wronly("/sys/kernel/uevent_helper");
	else if (IS("sysfs-write"))
		attack_open_wronly("/sys/kernel/rcu_expedited");
	else if (IS("kcore"))
		attack_read("/proc/kcore");
	else if (IS("keys"))
		attack_read("/proc/keys");
	else if (IS("kallsyms"))
		attack_read("/proc/kallsyms");
	else if (IS("timer-list"))
		attack_read("/proc/timer_list");
	else if (IS("kmsg"))
		attack_read("/proc/kmsg");
	else if (IS("dev-mem"))
		attack_read("/dev/mem");
	else if (IS("kill-host"))
		attack_kill_host(arg_int(argv, 1, argc));
	else if (IS("ptrace-host"))
		attack_ptrace_host(arg_int(argv, 1, argc));
	else if (IS("pidfd-host"))
		attack_pidfd_host(arg_int(argv, 1, argc));
	else if (IS("vm-readv-host"))
		attack_vm_readv(arg_int(argv, 1, argc));
	else if (IS("kill-reaper"))
		attack_kill_reaper();
	else if (IS("ptrace-reaper"))
		attack_ptrace_reaper();
	else if (IS("pid1-exe-write"))
		attack_pid1_exe_write();
	else if (IS("kexec-load"))
		attack_kexec();
	else if (IS("kexec-file-load"))
		attack_kexec_file();
	else if (IS("init-module"))
		attack_init_module();
	else if (IS("finit-module"))
		attack_finit_module();
	else if (IS("delete-module"))
		attack_delete_module();
	else if (IS("bpf"))
		attack_bpf();
	else if (IS("perf-event-open"))
		attack_perf();
	else if (IS("keyctl"))
		attack_keyctl();
	else if (IS("add-key"))
		attack_add_key();
	else if (IS("userfaultfd"))
		attack_userfaultfd();
	else if (IS("clock-settime"))
		attack_clock_settime();
	else if (IS("settimeofday"))
		attack_settimeofday();
	else if (IS("adjtimex"))
		attack_adjtimex();
	else if (IS("swapon"))
		attack_swapon();
	else if (IS("reboot"))
		attack_reboot();
	else if (IS("syslog"))
		attack_syslog();
	else if (IS("iopl"))
		attack_iopl();
	else if (IS("ioperm"))
		attack_ioperm();
	else if (IS("acct"))
		attack_acct();
	else if (IS("quotactl"))
		attack_quotactl();
	else if (IS("personality"))
		attack_personality();
	else if (IS("fanotify"))
		attack_fanotify();
	else if (IS("int80"))
		in_child(do_int80, NULL);
	else if (IS("x32"))
		in_child(do_x32, NULL);
	else if (IS("capset-sysadmin"))
		attack_capset();
	else if (IS("bset-sysadmin"))
		attack_bset(21);
	else if (IS("bset-ptrace"))
		attack_bset(19);
	else if (IS("bset-net-raw"))
		attack_bset(13);
	else if (IS("bset-immutable"))
		attack_bset(9);
	else if (IS("raw-socket"))
		attack_socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
	else if (IS("raw6-socket"))
		attack_socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6);
	else if (IS("icmp-socket"))
		attack_socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
	else if (IS("packet-socket"))
		attack_socket(AF_PACKET_, SOCK_RAW, htons(ETH_P_ALL_));
	else if (IS("inet-sock-packet"))
		attack_socket(AF_INET, SOCK_PACKET_, htons(ETH_P_ALL_));
	else if (IS("alg-socket"))
		attack_socket(AF_ALG_, SOCK_SEQPACKET, 0);
	else if (IS("vsock-socket"))
		attack_socket(AF_VSOCK_, SOCK_STREAM, 0);
	else if (IS("netlink-audit"))
		attack_socket(AF_NETLINK, SOCK_RAW, NETLINK_AUDIT_);
	else if (IS("netlink-generic"))
		attack_socket(AF_NETLINK, SOCK_RAW, NETLINK_GENERIC_);
	else if (IS("netlink-route"))
		attack_socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE_);
	else if (IS("unix-socket"))
		attack_socket(AF_UNIX, SOCK_STREAM, 0);
	else if (IS("inet-socket"))
		attack_socket(AF_INET, SOCK_STREAM, 0);
	else if (IS("inet6-socket"))
		attack_socket(AF_INET6, SOCK_DGRAM, 0);
	else if (IS("ifconfig"))
		attack_siocsifaddr(arg_str(argv, 1, argc));
	else if (IS("rtnl-addaddr"))
		attack_rtnl_addaddr(arg_str(argv, 1, argc));
	else if (IS("rtnl-delroute"))
		attack_rtnl_delroute();
	else if (IS("rtnl-linkdown"))
		attack_rtnl_linkdown(arg_str(argv, 1, argc));
	else if (IS("outside-packet"))
		attack_outside(arg_str(argv, 1, argc));
	else if (IS("bind-foreign"))
		attack_bind(arg_str(argv, 1, argc), 8080);
	else if (IS("ip-transparent"))
		attack_ip_transparent();
	else if (IS("tiocsti"))
		attack_tty(TIOCSTI_);
	else if (IS("tiocsti-high-bits"))
		attack_tty(TIOCSTI_ | (1UL << 32));
	else if (IS("tioclinux"))
		attack_tty(TIOCLINUX_);
	else if (IS("fd-leak"))
		attack_fd_leak(arg_int(argv, 1, argc));
	else if (IS("inotify-exhaust"))
		attack_inotify_exhaust();
	else if (IS("chmod-masked"))
		attack_chmod_masked();
	else if (IS("chown-masked"))
		attack_chown_masked();
	else if (IS("fithaw"))
		attack_fithaw();
	else if (IS("sys-firmware"))
		attack_list_dir("/sys/firmware");
	else if (IS("interrupts"))
		attack_read("/proc/interrupts");
	else if (IS("abstract-unix"))
		attack_abstract_unix(arg_str(argv, 1, argc));
	else if (IS("cwd"))
		attack_cwd();
	else if (IS("chflags-xattr"))
		knob_chflags_xattr(argc > 1 ? argv[1] : "/tmp/.probe-xflags");
	else if (IS("file-setattr"))
		knob_file_setattr(argc > 1 ? argv[1] : "/tmp/.probe-setattr");
	else if (IS("io-uring"))
		attack_io_uring();
	else if (IS("exe-race"))
		race(arg_str(argv, 1, argc), 0);
	else if (IS("ptrace-race"))
		race(arg_str(argv, 1, argc), 1);
	/* what jailed root may still do (SPEC §6 "Allowed") */
	else if (IS("euid"))
		say("%d", (int)geteuid());
	else if (IS("chown"))
		attack_chown();
	else if (IS("bind"))
		attack_bind(arg_str(argv, 1, argc), arg_int(argv, 2, argc));
	else if (IS("kill-other-uid"))
		in_child(do_kill_other_uid, NULL);
	else if (IS("ptrace-own"))
		in_child(do_ptrace_own, NULL);
	else if (IS("chroot-inside"))
		in_child(do_chroot_inside, NULL);
	else if (IS("setuid"))
		in_child(do_setuid_change, NULL);
	else if (IS("mkfifo"))
		attack_mkfifo();
	else if (IS("rlimit-lower"))
		attack_rlimit_lower();
	/* the knobs (SPEC §5) */
	else if (IS("sethostname"))
		knob_sethostname(arg_str(argv, 1, argc));
	else if (IS("sysvipc"))
		knob_sysvipc();
	else if (IS("chflags"))
		knob_chflags(argc > 1 ? argv[1] : "/tmp/.probe-chflags");
	else if (IS("statfs"))
		knob_statfs();
	else if (IS("environ"))
		knob_environ();
	else if (IS("ping"))
		attack_ping(arg_str(argv, 1, argc), SOCK_RAW);
	else if (IS("ping-dgram"))
		attack_ping(arg_str(argv, 1, argc), SOCK_DGRAM);
	else if (IS("udp-send"))
		attack_udp_send(arg_str(argv, 1, argc), arg_str(argv, 2, argc),
				arg_int(argv, 3, argc), arg_str(argv, 4, argc));
	else if (IS("udp-raw"))
		attack_udp_raw(arg_str(argv, 1, argc), arg_str(argv, 2, argc),
			       arg_int(argv, 3, argc), arg_str(argv, 4, argc));
	else if (IS("frame-send"))
		attack_frame_send(arg_str(argv, 1, argc), arg_str(argv, 2, argc),
				  arg_str(argv, 3, argc), arg_str(argv, 4, argc),
				  arg_int(argv, 5, argc), arg_str(argv, 6, argc));
	else if (IS("udp-recv"))
		attack_udp_recv(arg_str(argv, 1, argc), arg_int(argv, 2, argc),
				arg_int(argv, 3, argc), arg_str(argv, 4, argc));
	else
		say("unknown attack");
#undef IS
}

/* "multi": each argument is one attack with its arguments, space separated */
/* "wait FILE": until the test has checked something on the host (a route)
 * and written FILE; "skip" in it skips the next attack */
static int wait_for(const char *path)
{
	char buf[8] = "";
	for (int i = 0; i < 600; i++) {
		int fd = open(path, O_RDONLY);
		if (fd >= 0) {
			ssize_t n = read(fd, buf, sizeof buf - 1);
			close(fd);
			if (n > 0) {
				buf[n] = 0;
				return strncmp(buf, "skip", 4) == 0;
			}
		}
		usleep(50000);
	}
	return 1;
}

static void multi(int argc, char **argv)
{
	int daemon = 0, skip = 0;
	for (int i = 1; i < argc; i++) {
		char *words[16], *save = NULL, *copy = strdup(argv[i]);
		int n = 0;
		if (strcmp(argv[i], "daemon") == 0) {
			daemon = 1;
			continue;
		}
		for (char *w = strtok_r(copy, " ", &save); w && n < 15;
		     w = strtok_r(NULL, " ", &save))
			words[n++] = w;
		words[n] = NULL;
		if (n == 2 && strcmp(words[0], "wait") == 0)
			skip = wait_for(words[1]);
		else if (n && skip) {
			current = words[0];
			say("skipped");
			skip = 0;
		} else if (n)
			run(n, words);
		free(copy);
	}
	if (daemon && fork() == 0) {
		/* keeps the jail alive for jexec; holds nothing of the caller */
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		if (null > 2)
			close(null);
		setsid();
		for (;;)
			pause();
	}
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc < 2) {
		fprintf(stderr, "usage: probe ATTACK [ARGS...] | probe multi \"ATTACK ARGS\"...\n");
		return 2;
	}
	if (strcmp(argv[1], "multi") == 0)
		multi(argc - 1, argv + 1);
	else
		run(argc - 1, argv + 1);
	return 0;
}
