"""FreeBSD's jail(8) forms end to end: -c/-m/-r and their combinations, names,
persist, the exec.* hooks (order, environment, failures), jail.conf jails,
live address changes, jls's formats and jexec -l/-d.

Every jail has a name unique to this run (FNAME) and is removed at teardown;
addresses come from 198.51.100.0/24 and 2001:db8::/32 only, and a route is
looked at only with `ip route get` (nothing is sent here).
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from typing import Iterator

import pytest

from conftest import HOST_PATH, cmd, leftovers, needs_root, run, wait_until

pytestmark = needs_root
BB = "/usr/bin/busybox"
FB_USAGE = """usage: jail [-dhilqv] [-J jid_file] [-u username] [-U username]
            -[cmr] param=value ... [command=command ...]
       jail [-dqv] [-f file] -[cmr] [jail]
       jail [-qv] [-f file] -[rR] ['*' | jail ...]
       jail [-dhilqv] [-J jid_file] [-u username] [-U username]
            [-n jailname] [-s securelevel]
            path hostname [ip[,...]] command ...
"""


class Named:
    """Unique jail names; every jail of one of them is removed afterwards."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def __call__(self, tag: str = "") -> str:
        name = f"ljfb{os.getpid()}{tag}{len(self.names)}"
        self.names.append(name)
        return name

    def jid(self, name: str) -> int:
        r = run("jls", "-j", name, "jid")
        return int(r.out) if r.rc == 0 else 0

    def cleanup(self) -> None:
        for name in self.names:
            jid = self.jid(name)
            if jid:
                run("jailctl", "remove", "-t", "0.2", str(jid))
                assert wait_until(lambda: not leftovers(jid)), leftovers(jid)


@pytest.fixture
def named() -> Iterator[Named]:
    n = Named()
    yield n
    n.cleanup()


def jls_pid(name: str) -> int:
    pid = jls_json(name).get("pid")
    assert isinstance(pid, int)
    return pid


def jls_json(name: str) -> dict[str, object]:
    import json
    r = run("jls", "--json")
    return {j["name"]: j for j in json.loads(r.out)}.get(name, {})  # type: ignore[no-any-return]


# -- command lines ----------------------------------------------------------------------

@pytest.mark.parametrize("args", [["-r"], ["-R", "-c", "x"], ["-r", "name=x"],
                                  ["-l", "-c"], ["-n", "x", "-c"]])
def test_usage(args: list[str]) -> None:
    r = run("jail", *args)
    assert (r.rc, r.out, r.err) == (1, "", FB_USAGE)


def test_illegal_option_after_c() -> None:
    r = run("jail", "-c", "-x")
    assert (r.rc, r.out, r.err) == (1, "", "jail: illegal option -- x\n" + FB_USAGE)


def test_dragonfly_form_unchanged() -> None:
    r = run("jail", "-x", "/", "h", "", "/bin/true")
    assert r.err.endswith("Usage: jail [-i] [-l -u username | -U username] path hostname "
                          "ip-list command ...\n")


@pytest.mark.parametrize("param, message", [
    ("allow.mount.zfs", "jail: unknown parameter: allow.mount.zfs\n"),
    ("zfs.dataset=tank/x", "jail: unknown parameter: zfs.dataset\n"),
    ("securelevel=3", "jail: securelevel: Linux has no securelevel; not supported\n"),
    ("vnet", "jail: vnet: not supported: a jail's network is linjail's own veth "
             "(see jail(8))\n"),
    ("vnet.interface=x", "jail: vnet.interface: not supported: a jail's network is "
                         "linjail's own veth (see jail(8))\n"),
    ("children.max=1", "jail: children.max: 0 only: a jail cannot create jails on linjail\n"),
    ("persist=maybe", 'jail: persist: unknown boolean value "maybe"\n'),
    ("enforce_statfs=x", 'jail: enforce_statfs: non-integer value "x"\n'),
    ("ip4.addr=198.51.100.1,bogus", "jail: ip4.addr: not an IPv4 address: bogus\n"),
    ("ip6.addr=198.51.100.1", "jail: ip6.addr: not an IPv6 address: 198.51.100.1\n"),
    ("allow.mount", "jail: allow.mount: linjail never grants this permission (jailed root "
                    "cannot do that here)\n"),
    # DragonFly's jail.vfs_mount_* are accepted by jailctl sysctl, but jailed root
    # mounts nothing either way (jailctl(8))
    ("allow.mount.nullfs", "jail: allow.mount.nullfs: linjail never grants this permission "
                           "(jailed root cannot do that here)\n"),
    ("allow.mount.tmpfs=1", "jail: allow.mount.tmpfs: linjail never grants this permission "
                            "(jailed root cannot do that here)\n"),
    ("sysvmsg=inherit", "jail: sysvmsg: inherit cannot hold here: each jail has its own "
                        "SysV IPC namespace (use new or disable)\n"),
    ("devfs_ruleset=5", "jail: devfs_ruleset: 5: linjail's /dev is always devfsrules_jail "
                        "(ruleset 4)\n"),
    ("name=a.b", "jail: name: a.b: a name with a '.' names a child jail; linjail has no "
                 "nested jails\n"),
    ("jid=1000000", "jail: jid: 1000000: out of range (1 to 999999)\n"),
])
def test_parameter_refusals_start_nothing(service_root: str, param: str, message: str) -> None:
    r = run("jail", "-c", f"path={service_root}", "persist", param)
    assert (r.rc, r.out, r.err) == (1, "", message)
    assert f'"path": "{service_root}"' not in run("jls", "--json").out


def test_path_errors(service_root: str) -> None:
    r = run("jail", "-c", "path=/nonexistent", "persist")
    assert (r.rc, r.err) == (1, "jail: path /nonexistent: No such file or directory\n")
    r = run("jail", "-c", f"path={service_root}/etc/passwd", "persist")
    assert (r.rc, r.err) == (1, f"jail: path {service_root}/etc/passwd: Not a directory\n")
    r = run("jail", "-c", "persist", "host.hostname=x")
    assert (r.rc, r.err) == (1, "jail: path: not set (a jail needs its root directory)\n")
    r = run("jail", "-c", "persist")               # one word without '=': a jail.conf name
    assert (r.rc, r.err) == (1, "jail: /etc/jail.conf: No such file or directory\n")


def test_create_with_command_then_gone(service_root: str, named: Named) -> None:
    name = named()
    r = run("jail", "-c", f"path={service_root}", f"name={name}", "host.hostname=fb.example",
            "command=/bin/sh", "-c", f"{BB} hostname; echo $0")
    assert (r.rc, r.out, r.err) == (0, "fb.example\n/bin/sh\n", "")
    # no persist and nothing left: the jail is gone
    assert wait_until(lambda: named.jid(name) == 0, 5)


def test_failing_command_fails_and_removes(service_root: str, named: Named) -> None:
    name = named()
    r = run("jail", "-c", f"path={service_root}", f"name={name}", f"command={BB}", "false")
    assert (r.rc, r.out, r.err) == (1, "", f"jail: {BB} false: failed\n")
    r = run("jail", "-c", f"path={service_root}", f"name={name}", "command=/nonexistent")
    assert (r.rc, r.out, r.err) == (1, "", "jail: exec /nonexistent: No such file or "
                                           "directory\n")
    assert named.jid(name) == 0


def test_persist_names_jid_and_removal(service_root: str, named: Named) -> None:
    name = named()
    r = run("jail", "-i", "-c", f"path={service_root}", f"name={name}", "persist",
            "ip4.addr=198.51.100.71")
    assert r.rc == 0 and r.err == "", r.err
    jid = int(r.out)
    assert named.jid(name) == jid
    assert run("jexec", name, BB, "hostname").rc == 0
    # names are unique among running jails
    r = run("jail", "-c", f"path={service_root}", f"name={name}", "persist")
    assert (r.rc, r.out, r.err) == (1, "", f'jail: "{name}" already exists\n')
    r = run("jail", "-c", f"path={service_root}", f"jid={jid}", "persist")
    assert (r.rc, r.out, r.err) == (1, "", f'jail: "{jid}" already exists\n')
    # a persistent jail stays with no process, jail -r removes it (by jid here)
    time.sleep(1.2)
    assert named.jid(name) == jid
    r = run("jail", "-r", str(jid))
    assert (r.rc, r.out, r.err) == (0, "", "")
    assert named.jid(name) == 0 and not leftovers(jid)
    r = run("jail", "-r", name)
    assert (r.rc, r.out, r.err) == (1, "", f'jail: "{name}" not found\n')


def test_explicit_jid(service_root: str, named: Named) -> None:
    name = named()
    want = 990000 + os.getpid() % 9000
    r = run("jail", "-c", f"path={service_root}", f"name={name}", f"jid={want}", "persist")
    assert r.rc == 0, r.err
    assert run("jls", "-j", str(want), "jid", "name").out == f"{want} {name}\n"


def test_nopersist_ends_an_idle_jail(service_root: str, named: Named) -> None:
    name = named()
    assert run("jail", "-c", f"path={service_root}", f"name={name}", "persist").rc == 0
    jid = named.jid(name)
    r = run("jail", "-m", f"name={name}", "nopersist")
    assert (r.rc, r.out, r.err) == (0, "", "")
    assert wait_until(lambda: named.jid(name) == 0, 5)
    assert wait_until(lambda: not leftovers(jid))


def test_persist_keeps_a_dragonfly_jail(service_root: str, named: Named) -> None:
    """jail -m persist on a jail of DragonFly's form: it outlives its command."""
    name = named()
    proc = subprocess.Popen([cmd("jail"), "-n", name, service_root, "h", "", BB, "sleep",
                             "1"], stdout=subprocess.DEVNULL, env={"PATH": HOST_PATH})
    try:
        assert wait_until(lambda: named.jid(name) != 0, 10)
        assert run("jail", "-m", f"name={name}", "persist").rc == 0
        assert proc.wait(10) == 0
        time.sleep(1.2)
        assert named.jid(name) != 0
    finally:
        proc.kill()
        proc.wait()


def test_modify_combinations(service_root: str, tmp_path: object, named: Named) -> None:
    name = named()
    r = run("jail", "-m", f"name={name}", "persist")
    assert (r.rc, r.err) == (1, f'jail: "{name}" not found\n')
    r = run("jail", "-m", "persist", "host.hostname=x")
    assert (r.rc, r.err) == (1, "jail: no jail specified\n")
    r = run("jail", "-cm", f"path={service_root}", f"name={name}", "persist")
    assert r.rc == 0, r.err
    first = named.jid(name)
    r = run("jail", "-cm", f"path={service_root}", f"name={name}", "host.hostname=changed")
    assert r.rc == 0, r.err
    assert named.jid(name) == first
    assert run("jexec", name, BB, "hostname").out == "changed\n"
    r = run("jail", "-m", f"name={name}", f"path={tmp_path}")
    assert (r.rc, r.err) == (1, "jail: path cannot be changed after creation\n")
    r = run("jail", "-rc", f"path={service_root}", f"name={name}", "persist")
    assert r.rc == 0, r.err
    second = named.jid(name)
    assert second not in (0, first) and not leftovers(first)
    r = run("jail", "-m", f"name={name}", "allow.raw_sockets")
    assert r.rc == 0
    assert r.err == ("jail: allow.* and enforce_statfs apply to processes started in the "
                     "jail from now on; its running processes keep the limits they started "
                     "with\n")
    assert run("jailctl", "sysctl", f"jail.{second}.allow_raw_sockets").out == \
        f"jail.{second}.allow_raw_sockets: 1\n"


def test_allow_parameters_are_the_knobs(service_root: str, named: Named) -> None:
    name = named()
    r = run("jail", "-c", f"path={service_root}", f"name={name}", "persist",
            "allow.noset_hostname", "allow.chflags", "allow.socket_af", "enforce_statfs=1",
            "sysvmsg=new", "sysvsem=new", "sysvshm=new")
    assert r.rc == 0, r.err
    jid = named.jid(name)
    out = run("jailctl", "sysctl", *(f"jail.{jid}.{k}" for k in (
        "set_hostname_allowed", "chflags_allowed", "socket_unixiproute_only",
        "enforce_statfs", "sysvipc_allowed"))).out
    assert out == "".join(f"jail.{jid}.{k}: {v}\n" for k, v in (
        ("set_hostname_allowed", 0), ("chflags_allowed", 1), ("socket_unixiproute_only", 0),
        ("enforce_statfs", 1), ("sysvipc_allowed", 1)))
    r = run("jexec", name, "/bin/sh", "-c", f"{BB} hostname other")
    assert r.rc != 0 and run("jexec", name, BB, "hostname").out != "other\n"


def test_modify_addresses_live(service_root: str, named: Named) -> None:
    name = named()
    r = run("jail", "-c", f"path={service_root}", f"name={name}", "persist",
            "ip4.addr=198.51.100.72,198.51.100.73", "ip6.addr=2001:db8::72")
    assert r.rc == 0, r.err
    jid = named.jid(name)
    dev = f"dev ljh{jid} "

    def route(addr: str) -> str:
        return run("ip", "route", "get", addr).out

    def inside() -> str:
        return run("jexec", name, BB, "ip", "-o", "addr", "show", "dev", "eth0").out
    assert dev in route("198.51.100.73") and "198.51.100.73/32" in inside()
    r = run("jail", "-m", f"name={name}", "ip4.addr=198.51.100.72,198.51.100.74")
    assert (r.rc, r.out, r.err) == (0, "", "")
    assert dev not in route("198.51.100.73") and "198.51.100.73/32" not in inside()
    assert dev in route("198.51.100.74") and "198.51.100.74/32" in inside()
    assert "2001:db8::72/128" in inside()                  # ip6.addr was not given
    assert run("jls", "-j", name, "ip4.addr", "ip6.addr").out == \
        "198.51.100.72,198.51.100.74 2001:db8::72\n"
    r = run("jail", "-m", f"name={name}", "ip6.addr=")
    assert r.rc == 0 and "2001:db8::" not in inside()
    assert dev not in run("ip", "-6", "route", "get", "2001:db8::72").out


def test_modify_refuses_an_address_in_use(service_root: str, named: Named) -> None:
    a, b = named("a"), named("b")
    assert run("jail", "-c", f"path={service_root}", f"name={a}", "persist",
               "ip4.addr=198.51.100.81").rc == 0
    assert run("jail", "-c", f"path={service_root}", f"name={b}", "persist",
               "ip4.addr=198.51.100.82").rc == 0
    r = run("jail", "-m", f"name={b}", "ip4.addr=198.51.100.82,198.51.100.81")
    assert (r.rc, r.out, r.err) == (1, "", "jail: jail_set: Address already in use\n")
    assert run("jls", "-j", b, "ip4.addr").out == "198.51.100.82\n"
    r = run("jail", "-c", f"path={service_root}", "persist", "ip4.addr=198.51.100.81")
    assert (r.rc, r.out, r.err) == (1, "", "jail: jail_set: Address already in use\n")


def test_modify_gives_a_jail_its_first_address(service_root: str, named: Named) -> None:
    name = named()
    assert run("jail", "-c", f"path={service_root}", f"name={name}", "persist").rc == 0
    jid = named.jid(name)
    assert run("jail", "-m", f"name={name}", "ip4.addr=198.51.100.75").rc == 0
    assert f"dev ljh{jid} " in run("ip", "route", "get", "198.51.100.75").out
    assert "198.51.100.75/32" in run("jexec", name, BB, "ip", "-o", "addr").out
    run("jailctl", "remove", name)
    assert wait_until(lambda: not leftovers(jid))


# -- jail.conf jails and their hooks ------------------------------------------------------

HOOK_CONF = """
exec.prepare = 'echo prepare JID=$JID JNAME=$JNAME >> {log}';
exec.prestart = 'echo prestart JID=$JID >> {log}';
exec.created = 'echo created JID=$JID JNAME=$JNAME JPATH=$JPATH >> {log}';
exec.poststart = 'echo poststart JID=$JID >> {log}';
exec.prestop = 'echo prestop JID=$JID >> {log}';
exec.poststop = 'echo poststop JID=$JID >> {log}';
exec.release = 'echo release JID=$JID >> {log}';
path = "{root}";
{name} {{
    host.hostname = "${{name}}.example.org";
    exec.start = "{bb} sh -c 'echo start in the jail: $(busybox hostname); busybox env'";
    exec.stop = "{bb} echo stop in the jail";
    persist;
{extra}}}
"""


def hook_conf(tmp_path: object, root: str, name: str, extra: str = "") -> tuple[str, str]:
    log = os.path.join(str(tmp_path), "hooks.log")
    conf = os.path.join(str(tmp_path), "jail.conf")
    with open(conf, "w") as f:
        f.write(HOOK_CONF.format(log=log, root=root, name=name, bb=BB, extra=extra))
    return conf, log


def test_hooks_in_freebsd_order_with_environment(service_root: str, tmp_path: object,
                                                 named: Named) -> None:
    name = named()
    conf, log = hook_conf(tmp_path, service_root, name)
    r = run("jail", "-f", conf, "-c", name, env={"PATH": "/usr/bin:/bin", "MARK": "kept"})
    assert r.rc == 0, r.err
    jid = named.jid(name)
    lines = r.out.splitlines()
    assert lines[:2] == [f"{name}: created", f"start in the jail: {name}.example.org"]
    assert "MARK=kept" in lines and not any(x.startswith("JID=") for x in lines)
    with open(log) as f:
        assert f.read() == (
            f"prepare JID= JNAME={name}\nprestart JID=\n"
            f"created JID={jid} JNAME={name} JPATH={service_root}\npoststart JID={jid}\n")
    os.unlink(log)
    r = run("jail", "-f", conf, "-r", name)
    assert (r.rc, r.out, r.err) == (0, f"stop in the jail\n{name}: removed\n", "")
    with open(log) as f:
        assert f.read() == (f"prestop JID={jid}\npoststop JID={jid}\nrelease JID={jid}\n")
    assert not leftovers(jid)
    # -q: only what the commands print
    r = run("jail", "-f", conf, "-qc", name)
    assert r.rc == 0 and f"{name}: created" not in r.out
    r = run("jail", "-f", conf, "-qr", str(named.jid(name)))
    assert (r.rc, r.out, r.err) == (0, "stop in the jail\n", "")


def test_exec_clean_environment(service_root: str, tmp_path: object, named: Named) -> None:
    name = named()
    conf, log = hook_conf(tmp_path, service_root, name, "    exec.clean;\n")
    r = run("jail", "-f", conf, "-c", name, env={"PATH": "/usr/bin:/bin", "MARK": "x",
                                                "TERM": "vt100"})
    assert r.rc == 0, r.err
    env = sorted(x for x in r.out.splitlines()[2:]
                 if "=" in x and not x.startswith(("PWD=", "SHLVL=")))    # set by sh
    assert env == ["HOME=/root", "PATH=/sbin:/bin:/usr/sbin:/usr/bin:/usr/local/sbin:"
                   "/usr/local/bin", "SHELL=/bin/sh", "TERM=vt100", "USER=root"]
    with open(log) as f:
        assert f.read().splitlines()[0] == "prepare JID= JNAME="     # no JID/JNAME/JPATH


def test_failing_prestart_starts_nothing(service_root: str, tmp_path: object,
                                         named: Named) -> None:
    name = named()
    conf, log = hook_conf(tmp_path, service_root, name, "    exec.prestart += false;\n")
    r = run("jail", "-f", conf, "-c", name)
    assert (r.rc, r.out, r.err) == (1, "", f"jail: {name}: false: failed\n")
    assert named.jid(name) == 0
    with open(log) as f:
        assert f.read() == "prepare JID= JNAME={0}\nprestart JID=\nrelease JID=\n".format(name)


@pytest.mark.parametrize("where", ["exec.created", "exec.start", "exec.poststart"])
def test_failure_after_creation_is_undone(service_root: str, tmp_path: object,
                                          named: Named, where: str) -> None:
    name = named()
    bad = f"{BB} false" if where == "exec.start" else "false"
    conf, log = hook_conf(tmp_path, service_root, name, f"    {where} += \"{bad}\";\n")
    r = run("jail", "-f", conf, "-c", name)
    assert r.rc == 1 and r.err == f"jail: {name}: {bad}: failed\n"
    assert r.out.startswith(f"{name}: created\n") and r.out.endswith(f"{name}: removed\n")
    assert named.jid(name) == 0
    assert f'"path": "{service_root}"' not in run("jls", "--json").out
    with open(log) as f:
        assert f.read().splitlines()[-1].startswith("release JID=")


def test_failing_prestop_keeps_the_jail(service_root: str, tmp_path: object,
                                        named: Named) -> None:
    name = named()
    conf, _ = hook_conf(tmp_path, service_root, name, "    exec.prestop += false;\n")
    assert run("jail", "-f", conf, "-c", name).rc == 0
    r = run("jail", "-f", conf, "-r", name)
    assert (r.rc, r.out, r.err) == (1, "", f"jail: {name}: false: failed\n")
    assert named.jid(name) != 0
    assert run("jail", "-R", name).rc == 0 and named.jid(name) == 0


def test_consolelog_and_timeout(service_root: str, tmp_path: object, named: Named) -> None:
    name = named()
    console = os.path.join(str(tmp_path), "console.log")
    conf, _ = hook_conf(tmp_path, service_root, name,
                        f'    exec.consolelog = "{console}";\n')
    r = run("jail", "-f", conf, "-c", name)
    assert r.rc == 0 and r.out == f"{name}: created\n", r.err
    with open(console) as f:
        assert f.read().startswith(f"start in the jail: {name}.example.org\n")
    run("jail", "-R", name)
    conf, _ = hook_conf(tmp_path, service_root, name,
                        "    exec.timeout = 1;\n    exec.poststart += 'sleep 5';\n")
    started = time.monotonic()
    r = run("jail", "-f", conf, "-c", name)
    assert r.rc == 1 and r.err == f"jail: {name}: sleep 5: timed out\n"
    assert time.monotonic() - started < 4 and named.jid(name) == 0


def test_config_errors_start_nothing(tmp_path: object) -> None:
    conf = os.path.join(str(tmp_path), "jail.conf")
    with open(conf, "w") as f:
        f.write("a {\n  path = /x\n}\n")
    r = run("jail", "-f", conf, "-c")
    assert (r.rc, r.out, r.err) == (1, "", f'jail: {conf} line 3: }}: syntax error '
                                           f'(expected ";")\n')
    r = run("jail", "-f", "/nonexistent.conf", "-c")
    assert (r.rc, r.err) == (1, "jail: /nonexistent.conf: No such file or directory\n")
    with open(conf, "w") as f:
        f.write("a { path = /; }\n")
    r = run("jail", "-f", conf, "-c", "b")
    assert (r.rc, r.err) == (1, 'jail: "b" not found\n')


def test_depend_order_and_undefined(service_root: str, tmp_path: object,
                                    named: Named) -> None:
    a, b, c = named("a"), named("b"), named("c")
    conf = os.path.join(str(tmp_path), "jail.conf")
    with open(conf, "w") as f:
        f.write(f'path = "{service_root}"; persist;\n'
                f"{b} {{ depend = {a}; }}\n{a} {{ }}\n{c} {{ depend = nothere; }}\n")
    r = run("jail", "-f", conf, "-c", b)
    assert (r.rc, r.out, r.err) == (0, f"{a}: created\n{b}: created\n", "")
    r = run("jail", "-f", conf, "-r", a)
    assert (r.rc, r.out, r.err) == (0, f"{b}: removed\n{a}: removed\n", "")
    r = run("jail", "-f", conf, "-c", c)
    assert (r.rc, r.out, r.err) == (1, "", f'jail: {c}: depends on undefined jail '
                                           f'"nothere"\n')


# -- jls and jexec ------------------------------------------------------------------------

def test_jls_formats(service_root: str, named: Named) -> None:
    name = named()
    r = run("jail", "-c", f"path={service_root}", f"name={name}", "persist",
            "host.hostname=fmt.example.org", "ip4.addr=198.51.100.76,198.51.100.77",
            "ip6.addr=2001:db8::76")
    assert r.rc == 0, r.err
    jid = named.jid(name)
    cg = jls_json(name)
    assert cg
    cpuset = run("jls", "-j", name, "cpuset.id").out.strip()
    assert cpuset.isdigit() and int(cpuset) > 0
    path = service_root
    assert run("jls", "-j", name).out == (
        "   JID  IP Address      Hostname                      Path\n"
        f"{jid:6d}  198.51.100.76   fmt.example.org               {path}\n")
    assert run("jls", "-N", "-j", name).out == (
        " JID             IP Address      Hostname                      Path\n"
        f" {name:<15} 198.51.100.76   fmt.example.org               {path}\n")
    assert run("jls", "-v", "-j", str(jid)).out == (
        "   JID  Hostname                      Path\n"
        "        Name                          State\n"
        "        CPUSetID\n"
        "        IP Address(es)\n"
        f"{jid:6d}  fmt.example.org               {path}\n"
        f"        {name:<29} ACTIVE\n"
        f"        {cpuset}\n"
        "        198.51.100.76\n        198.51.100.77\n        2001:db8::76\n")
    assert run("jls", "-j", name, "jid", "name", "persist", "ip4.addr").out == \
        f"{jid} {name} true 198.51.100.76,198.51.100.77\n"
    assert run("jls", "-h", "-j", name, "jid", "dying", "allow.raw_sockets").out == \
        f"jid dying allow.raw_sockets\n{jid} false false\n"
    assert run("jls", "-n", "-j", name, "persist", "allow.raw_sockets", "host.hostname").out \
        == "persist allow.noraw_sockets host.hostname=fmt.example.org\n"
    s = run("jls", "-s", "-j", name).out
    assert s == (f"devfs_ruleset=0 enforce_statfs=2 host=new ip4=new ip6=new jid={jid} "
                 f"name={name} path={path} persist sysvmsg=disable sysvsem=disable "
                 "sysvshm=disable unprivileged_root allow.nochflags allow.noraw_sockets "
                 "allow.reserved_ports "
                 "allow.set_hostname allow.nosocket_af allow.nosysvipc children.max=0 "
                 "host.hostname=fmt.example.org ip4.addr=198.51.100.76,198.51.100.77 "
                 "ip6.addr=2001:db8::76\n")
    # issue 11: the jail's range of host ids, as jls --json shows it too
    base = next(r["uid_base"] for r in json.loads(run("jls", "--json").out)
                if r["jid"] == jid)
    assert base >= 524288 and base % 65536 == 0
    assert run("jls", "-j", name, "unprivileged_root", "unprivileged_root.uid").out == \
        f"true {base}\n"
    assert run("jls", "--libxo", "json", "-j", name).out == (
        '{"__version": "2", "jail-information": {"jail": [{"jid":%d,"ipv4":"198.51.100.76",'
        '"hostname":"fmt.example.org","path":"%s"}]}\n}\n' % (jid, path))
    assert run("jls", "--libxo=json", "-n", "-j", name, "jid", "persist", "ip4.addr").out == (
        '{"__version": "2", "jail-information": {"jail": [{"jid":"%d","persist":true,'
        '"ip4.addr":["198.51.100.76","198.51.100.77"]}]}\n}\n' % jid)
    r = run("jls", "-j", "no-such-jail-here")
    assert (r.rc, r.out, r.err) == (1, "", 'jls: jail "no-such-jail-here" not found\n')
    r = run("jls", "-j", name, "zfs.dataset")
    assert (r.rc, r.err) == (1, "jls: unknown parameter: zfs.dataset\n")
    assert run("jls", "-c", "-j", name).rc == 0 and run("jls", "-c", "-j", "999998").rc == 1


def test_jexec_login_dir_and_names(service_root: str, named: Named) -> None:
    name = named()
    assert run("jail", "-c", f"path={service_root}", f"name={name}", "persist").rc == 0
    r = run("jexec", "-l", name, BB, "sh", "-c", "pwd; echo $HOME $USER $SHELL $PATH",
            env={"PATH": "/usr/bin:/bin", "SECRET": "x"})
    assert (r.rc, r.err) == (0, "")
    assert r.out == ("/root\n/root root /bin/sh "
                     "/sbin:/bin:/usr/sbin:/usr/bin:/usr/local/sbin:/usr/local/bin\n")
    r = run("jexec", "-l", name, input="echo $0; echo $SECRET.\n",
            env={"PATH": "/usr/bin:/bin", "SECRET": "x"})
    assert (r.rc, r.out) == (0, "-sh\n.\n")
    assert run("jexec", "-d", "/etc", name, BB, "pwd").out == "/etc\n"
    r = run("jexec", "-d", "/nonexistent", name, BB, "pwd")
    assert (r.rc, r.err) == (1, "jexec: chdir(): /nonexistent: No such file or directory\n")
    r = run("jexec", name)                       # no command without -l: DragonFly's usage
    assert (r.rc, r.err) == (1, "usage: jexec [-u username | -U username] jid command ...\n")


def test_legacy_form_with_name_and_jid_file(service_root: str, tmp_path: object,
                                            named: Named) -> None:
    name = named()
    jf = os.path.join(str(tmp_path), "jid")
    r = run("jail", "-n", name, "-J", jf, service_root, "legacy.example", "198.51.100.78",
            "/bin/sh", "-c", "busybox hostname; exit 3")
    assert (r.rc, r.out, r.err) == (3, "legacy.example\n", "")      # DragonFly's status
    with open(jf) as f:
        jid, rest = f.read().split("\t", 1)
    assert jid.isdigit()
    assert rest == (f"{service_root}\tlegacy.example\t198.51.100.78\t"
                    '/bin/sh -c "busybox hostname; exit 3"\n')
    r = run("jail", "-s", "2", service_root, "h", "", "/bin/true")
    assert (r.rc, r.err) == (1, "jail: securelevel: Linux has no securelevel; not "
                                "supported\n")


# -- a Bastille-style jail.conf ----------------------------------------------------------

@pytest.fixture
def veth() -> Iterator[str]:
    """A veth pair of the test's own (both ends on the host, no address)."""
    name = f"ljv{os.getpid() % 100000}"
    r = run("ip", "link", "add", name, "type", "veth", "peer", "name", name + "p")
    if r.rc != 0:
        pytest.skip(f"cannot create a veth: {r.err.strip()}")
    run("ip", "link", "set", name, "up")
    yield name
    run("ip", "link", "del", name)


def test_bastille_style_conf(private_root: str, tmp_path: object, veth: str,
                             named: Named) -> None:
    name = named("b")
    data = os.path.join(str(tmp_path), "data")
    os.makedirs(data)
    with open(os.path.join(data, "hello"), "w") as f:
        f.write("from the host\n")
    os.makedirs(os.path.join(private_root, "data"))
    marker = "/var/started"
    with open(os.path.join(private_root, "etc/rc"), "w") as f:
        f.write(f"#!/bin/sh\n{BB} cat /data/hello > {marker}\n"
                f"{BB} sleep 300 >/dev/null 2>&1 &\n")
    with open(os.path.join(private_root, "etc/rc.shutdown"), "w") as f:
        f.write("#!/bin/sh\necho shutting down\n")
    fstab = os.path.join(str(tmp_path), "fstab")
    with open(fstab, "w") as f:
        f.write(f"{data} {private_root}/data nullfs ro 0 0\n")
    conf = os.path.join(str(tmp_path), "jail.conf")
    with open(conf, "w") as f:
        f.write(f"""{name} {{
  devfs_ruleset = 4;
  enforce_statfs = 2;
  exec.clean;
  exec.start = '/bin/sh /etc/rc';
  exec.stop = '/bin/sh /etc/rc.shutdown';
  host.hostname = {name};
  mount.devfs;
  mount.fstab = {fstab};
  path = {private_root};
  interface = {veth};
  ip4.addr = 198.51.100.79;
}}
""")
    r = run("jail", "-f", conf, "-c", name)
    assert (r.rc, r.out, r.err) == (0, f"{name}: created\n", "")
    jid = named.jid(name)
    with open(os.path.join(private_root, marker.lstrip("/"))) as f:
        assert f.read() == "from the host\n"
    r = run("jexec", name, BB, "ip", "-o", "-4", "addr", "show", "dev", "eth0")
    assert "198.51.100.79/32" in r.out
    assert run("jexec", name, BB, "ls", "/dev/null").rc == 0
    assert run("jls", "-j", name, "devfs_ruleset").out == "4\n"
    # jail -m on a jail of a host's link: its address and its egress filter
    r = run("jail", "-m", f"name={name}", "ip4.addr=198.51.100.83")
    assert (r.rc, r.out, r.err) == (0, "", "")
    r = run("jexec", name, BB, "ip", "-o", "-4", "addr", "show", "dev", "eth0")
    assert "198.51.100.83/32" in r.out and "198.51.100.79" not in r.out
    pid = jls_pid(name)
    rules = run("nsenter", f"--net=/proc/{pid}/ns/net", "nft", "list", "table", "netdev",
                "linjail")
    if rules.rc == 0:        # nft(8) is the oracle when installed
        assert "0xc6336453" in rules.out or "198.51.100.83" in rules.out, rules.out
        assert "0xc633644f" not in rules.out and "198.51.100.79" not in rules.out
    r = run("jail", "-f", conf, "-r", name)
    assert (r.rc, r.out, r.err) == (0, f"shutting down\n{name}: removed\n", "")
    assert not leftovers(jid)
    # the host sees no mount of the jail's
    with open("/proc/self/mountinfo") as f:
        assert private_root not in f.read()


def test_interface_with_the_default_route_is_refused(service_root: str, tmp_path: object,
                                                     named: Named) -> None:
    from linjail.lifecycle.fbsd import default_route_interfaces
    uplinks = sorted(default_route_interfaces())
    if not uplinks:
        pytest.skip("this host has no default route")
    name = named()
    r = run("jail", "-c", f"path={service_root}", f"name={name}", "persist",
            f"interface={uplinks[0]}", "ip4.addr=198.51.100.80")
    assert (r.rc, r.out, r.err) == (1, "", f"jail: interface {uplinks[0]}: carries the host's "
                                           "default route; a jail needs an interface of "
                                           "its own\n")
    assert named.jid(name) == 0


@pytest.mark.parametrize("args, message", [
    (["-c", "path=/", "persist", "host.hostname=x"], "jail: jail_set: Operation not permitted\n"),
    (["-m", "name=x", "persist"], "jail: jail_set: Operation not permitted\n"),
    (["-r", "x"], "jail: jail_remove: Operation not permitted\n"),
])
def test_not_root_is_refused(args: list[str], message: str) -> None:
    """FreeBSD's words for a user other than root (in-process, as nobody)."""
    import sys
    from linjail.cli import _main, jail as jail_cli, jail_fbsd  # noqa: F401
    from linjail.lifecycle import fbsd  # noqa: F401
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            os.close(r)
            sys.stderr = open(w, "w")
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            code = jail_cli.main(args)
            sys.stderr.flush()
        finally:
            os._exit(code)
    os.close(w)
    err = os.read(r, 4096).decode()
    os.close(r)
    _, st = os.waitpid(pid, 0)
    assert (os.waitstatus_to_exitcode(st), err) == (1, message)


def test_jid_file_and_verbose(service_root: str, tmp_path: object, named: Named) -> None:
    name = named()
    jf = os.path.join(str(tmp_path), "jids")
    r = run("jail", "-v", "-J", jf, "-c", f"path={service_root}", f"name={name}", "persist",
            "host.hostname=with space", "exec.poststart=true")
    assert r.rc == 0, r.err
    jid = named.jid(name)
    assert r.out == "created\nrun command: true\n"        # -v: notes for any jail
    with open(jf) as f:
        assert f.read() == (f'jid={jid} path={service_root} name={name} persist '
                            f'host.hostname="with space" exec.poststart=true\n')
