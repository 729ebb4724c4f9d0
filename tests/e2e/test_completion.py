"""Shell completion (issue 15): etc/completion/linjail.bash sourced into a
plain bash (no bash-completion), driven the way bash drives it (COMP_WORDS,
COMP_CWORD, COMP_LINE, COMP_POINT, then the function `complete -p` names),
and its word lists checked against the Python tables they copy.  The zsh
file is checked for syntax with zsh when it is installed.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import BIN, COMMANDS, HOST_PATH, Jails, needs_root

REPO = Path(__file__).resolve().parents[2]
BASH = REPO / "etc" / "completion" / "linjail.bash"
ZSH = REPO / "etc" / "completion" / "_linjail"
BB = "/usr/bin/busybox"
BREAKS = ":="          # the part of COMP_WORDBREAKS that splits our words


def comp_words(line: str) -> tuple[list[str], int]:
    """COMP_WORDS and COMP_CWORD as bash makes them for LINE (cursor at the end):
    words split at blanks, and each run of : or = a word of its own."""
    words: list[str] = []
    for token in line.split():
        words += [w for w in re.split(f"([{BREAKS}]+)", token) if w]
    if not line or line[-1].isspace():
        words.append("")
    return words, len(words) - 1


def complete(line: str, setup: str = "", env: dict[str, str] | None = None) -> list[str]:
    words, cword = comp_words(line)
    script = f"""
source {shlex.quote(str(BASH))}
{setup}
COMP_LINE={shlex.quote(line)}
COMP_POINT=${{#COMP_LINE}}
COMP_WORDS=({' '.join(shlex.quote(w) for w in words)})
COMP_CWORD={cword}
func=$(complete -p {shlex.quote(words[0])} | sed -n 's/.* -F \\([^ ]*\\) .*/\\1/p')
"$func" {shlex.quote(words[0])} {shlex.quote(words[-1])} {shlex.quote(words[-2] if cword else '')}
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    full_env = {"PATH": f"{BIN}:{HOST_PATH}", "LANG": "C", "HOME": "/root", **(env or {})}
    p = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], capture_output=True,
                       text=True, timeout=60, env=full_env, check=False)
    assert (p.returncode, p.stderr) == (0, ""), (line, p.stderr)
    return sorted(w for w in p.stdout.split("\n") if w)


def test_every_command_has_a_completion() -> None:
    script = f"source {shlex.quote(str(BASH))}; complete -p {' '.join(COMMANDS)}"
    p = subprocess.run(["bash", "--norc", "-c", script], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert [line.split()[-1] for line in p.stdout.splitlines()] == list(COMMANDS)


def test_options_and_subcommands() -> None:
    assert complete("jail -") == ["--version", "-U", "-i", "-l", "-u"]
    assert complete("jail -i -") == ["-U", "-i", "-l", "-u"]
    assert complete("jls -") == ["--json", "--libxo", "--version", "-N", "-c", "-d", "-h",
                                 "-j", "-n", "-q", "-s", "-v"]
    assert "host.hostname" in complete("jls ") and "all" in complete("jls ")
    assert complete("jexec -") == ["--version", "-U", "-u"]
    assert complete("jailctl ") == ["--version", "build", "destroy", "doctor", "remove",
                                    "restart", "start", "status", "stop", "sysctl"]
    assert complete("jailctl st") == ["start", "status", "stop"]
    assert complete("jailctl one") == ["onerestart", "onestart", "onestatus", "onestop"]
    assert complete("jailctl build /tmp --") == ["--complete", "--from-tar", "--hostname",
                                                 "--include", "--mirror", "--service",
                                                 "--suite", "--thin"]
    assert complete("jailctl build /tmp --complete --suite book") == ["bookworm"]
    assert complete("jailctl remove -") == ["-t"]
    assert complete("jailctl start -") == ["--force", "-f"]
    assert complete("rctl -") == ["--version", "-a", "-h", "-l", "-r", "-u"]
    assert complete("rctl ") == ["jail:"]
    assert complete("jail -u roo") == ["root"]


def test_paths_where_paths_go(tmp_path: Path) -> None:
    (tmp_path / "jails" / "www").mkdir(parents=True)
    (tmp_path / "jails" / "www.tar").write_text("")
    (tmp_path / "jails" / "www" / "bin").mkdir()
    (tmp_path / "jails" / "www" / "bin" / "sh").write_text("")
    base = f"{tmp_path}/jails/"
    assert complete(f"jail {base}w") == [f"{base}www"]                      # directories
    assert complete(f"jailctl build {base}w") == [f"{base}www"]
    assert complete(f"jailctl destroy {base}w") == [f"{base}www"]
    assert complete(f"jailctl build x --thin {base}w") == [f"{base}www"]
    assert complete(f"jailctl build x --from-tar {base}w") == [f"{base}www", f"{base}www.tar"]
    assert complete(f"jailctl start -f {base}www.t") == [f"{base}www.tar"]
    # jail's command is a path inside the new jail's root, as the jail sees it
    assert complete(f"jail -i {base}www h 198.51.100.1 /b") == ["/bin/"]
    assert complete(f"jail {base}www h '' /bin/") == ["/bin/sh"]
    assert complete("jail /nonexistent h '' /b") == []


def test_rc_conf_names(tmp_path: Path) -> None:
    conf = tmp_path / "rc.conf"
    conf.write_text('jail_enable="YES"\njail_list="www db"   # the two\n'
                    'jail_my_mail_rootdir="/j/m"\njail_my_mail_hostname="m"\n'
                    "jail_old_ip='198.51.100.3'\njail_default_set_hostname_allow=\"NO\"\n")
    assert complete(f"jailctl start -f {conf} ") == ["db", "my_mail", "old", "www"]
    assert complete(f"jailctl onestop -f {conf} w") == ["www"]
    assert complete("jailctl status ", env={"LINJAIL_RC_CONF": f"/nonexistent:{conf}"}) == \
        ["db", "my_mail", "old", "www"]


@needs_root
def test_running_jails_and_knobs(service_root: str, jails: Jails) -> None:
    jid = jails.start(service_root, "compl.example.org", "", "/bin/sh", "-c",
                      f"{BB} sleep 120 >/dev/null 2>&1 &")
    assert str(jid) in complete("jexec ")
    assert str(jid) in complete("jailctl remove ")
    assert f"{jid}:" in complete("rctl -u jail:")
    # bash has already put "jail:" and the JID on the line; the rest is offered
    assert "memoryuse:" in complete(f"rctl -a jail:{jid}:mem")
    assert complete(f"rctl -a jail:{jid}:maxproc:den") == ["deny="]
    names = complete("jailctl sysctl jail.")
    assert "jail.set_hostname_allowed" in names and "jail.defaults.chflags_allowed" in names
    assert f"jail.{jid}.allow_raw_sockets" in names
    assert complete("jailctl sysctl jail.defaults.sysv") == ["jail.defaults.sysvipc_allowed"]
    # jexec: commands on the jail's PATH, then paths inside its root
    assert complete(f"jexec {jid} bu") == ["busybox"]
    assert complete(f"jexec -u root {jid} /usr/bin/bu") == ["/usr/bin/busybox"]


def test_word_lists_match_the_code() -> None:
    """The lists the completion carries are the ones the commands accept."""
    from linjail.cli import jailctl, jailctl_build, jailctl_rc
    from linjail.config import rctl
    from linjail.model import Knobs
    text = BASH.read_text()

    def words(var: str) -> list[str]:
        m = re.search(rf'^{var}="([^"]*)"', text, re.M)
        assert m, var
        return m.group(1).split()

    assert words("_linjail_resources") == list(rctl.RESOURCES)
    assert sorted(words("_linjail_rctl_actions")) == sorted(rctl.ACTIONS)
    assert sorted(words("_linjail_knobs")) == sorted(Knobs().as_dict())
    assert words("_linjail_rc_actions") == list(jailctl_rc.ACTIONS)
    assert sorted(words("_linjail_rc_prefixes")) == sorted(p for p in jailctl_rc.PREFIXES if p)
    for option in re.findall(r"--[a-z-]+", jailctl_build.__doc__ or ""):
        assert option in text, option
    for verb in re.findall(r"jailctl (\w+)", jailctl.USAGE):
        assert verb in text, verb


def test_zsh_completion_parses() -> None:
    zsh = shutil.which("zsh", path=HOST_PATH)
    if zsh is None:
        pytest.skip("zsh is not installed")
    text = ZSH.read_text()
    assert text.startswith(f"#compdef {' '.join(COMMANDS)}\n")
    p = subprocess.run([zsh, "-n", str(ZSH)], capture_output=True, text=True)
    assert (p.returncode, p.stderr) == (0, "")
    # loaded by compinit from a directory on fpath, it defines the completer
    script = (f"fpath=({shlex.quote(str(ZSH.parent))} $fpath); autoload -Uz compinit; "
              # -D: no dump file (-d /dev/null made zsh mv its dump over /dev/null,
              # replacing the host's device with a regular file)
              "compinit -u -D; print -r -- $_comps[jls] $_comps[rctl]")
    p = subprocess.run([zsh, "-f", "-c", script], capture_output=True, text=True,
                       env={"PATH": HOST_PATH, "HOME": os.environ.get("HOME", "/root")})
    assert (p.returncode, p.stdout) == (0, "_linjail _linjail\n"), p.stderr


def test_linjail_oci() -> None:
    """linjail-oci: commands and options are the CLI's table (cli/linjail_oci.py)."""
    from linjail.cli import linjail_oci
    assert complete("linjail-oci ") == sorted(linjail_oci.OPTIONS)
    assert complete("linjail-oci --") == sorted(f"--{o}" for o in linjail_oci.GLOBAL)
    for command, table in linjail_oci.OPTIONS.items():
        assert complete(f"linjail-oci --debug {command} --") == \
            sorted([f"--{o}" for o in table] + ["--help"]), command
    assert complete("linjail-oci list --format ") == ["json", "table"]
    assert complete("linjail-oci --log-format j") == ["json"]
    assert "KILL" in complete("linjail-oci kill some-id ")
