"""Parsing and formatting of jail, jls and jexec: no root, no kernel (SPEC §2–4)."""
from __future__ import annotations

import ipaddress

import pytest

from linjail.cli import jail_dfly as jail_cli
from linjail.cli.jexec import parse_jid
from linjail.cli.jls import escape, format_ips
from linjail.errors import JailError, UsageError, render
from linjail.model import parse_ip_list


def test_ip_list_skips_empty_elements() -> None:
    assert parse_ip_list("") == ()
    assert parse_ip_list(",,") == ()
    assert parse_ip_list(",198.51.100.1,,2001:db8::1,") == (
        ipaddress.ip_address("198.51.100.1"), ipaddress.ip_address("2001:db8::1"))


@pytest.mark.parametrize("bad", ["1.2.3", "1.2.3.4.5", "256.1.1.1", "01.1.1.1", "1.2.3.4/24",
                                 " 1.2.3.4", "+1.2.3.4", "fe80::1%eth0", "2001:db8::/64",
                                 "x", "1.2.3.٤"])
def test_ip_list_rejects(bad: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_ip_list(f"198.51.100.1,{bad}")
    assert info.value.args[0] == bad


def test_ipv6_any_text_form() -> None:
    assert parse_ip_list("::ffff:198.51.100.7,2001:DB8:0:0::1") == (
        ipaddress.ip_address("::ffff:198.51.100.7"), ipaddress.ip_address("2001:db8::1"))


@pytest.mark.parametrize("argv", [[], ["-q", "/", "h", "", "x"], ["/", "h", ""],
                                  ["-l", "/", "h", "", "x"], ["-u"], ["-U"],
                                  ["-u", "a", "-U", "b", "/", "h", "", "x"]])
def test_usage(argv: list[str]) -> None:
    with pytest.raises(UsageError) as info:
        jail_cli.parse(argv)
    assert info.value.message.splitlines()[-1] == jail_cli.USAGE
    first = info.value.message.splitlines()[0]
    if argv[:1] == ["-q"]:
        assert first == "jail: illegal option -- q"
    elif argv in (["-u"], ["-U"]):
        assert first == f"jail: option requires an argument -- {argv[0][1]}"
    else:
        assert info.value.message == jail_cli.USAGE


def test_options_stop_at_first_operand(tmp_path: object) -> None:
    spec = jail_cli.parse(["-i", "/", "host", "", "/bin/echo", "-u", "x"])
    assert spec.command == ("/bin/echo", "-u", "x")  # type: ignore[attr-defined]
    assert spec.print_jid  # type: ignore[attr-defined]


def test_last_repeated_user_wins() -> None:
    spec = jail_cli.parse(["-U", "a", "-U", "b", "/", "h", "", "x"])
    assert spec.jail_user == "b"  # type: ignore[attr-defined]


def test_realpath_and_invalid_value_messages() -> None:
    with pytest.raises(JailError) as info:
        jail_cli.build_spec(jail_cli.parse(["/no/such/dir", "h", "", "x"]))
    assert render("jail", info.value) == "jail: realpath: /no/such/dir: No such file or directory"
    with pytest.raises(JailError) as info:
        jail_cli.build_spec(jail_cli.parse(["/", "h", "bogus", "x"]))
    assert (info.value.message, info.value.stdout) == ("Invalid value bogus", True)


@pytest.mark.parametrize("text,value", [("7", 7), (" 7", 7), ("+7", 7), ("-1", -1),
                                        ("0", 0), ("2147483647", 2147483647)])
def test_jid_parses_like_strtol(text: str, value: int) -> None:
    assert parse_jid(text) == value


@pytest.mark.parametrize("text,message", [
    ("", "jexec: cannot parse jail id: ."),
    ("7x", "jexec: cannot parse jail id: 7x."),
    ("0x10", "jexec: cannot parse jail id: 0x10."),
    ("2147483648", "jexec: invalid jail id: 2147483648: Result too large"),
    ("-2147483649", "jexec: invalid jail id: -2147483649: Result too large"),
])
def test_jid_errors(text: str, message: str) -> None:
    with pytest.raises(JailError) as info:
        parse_jid(text)
    assert info.value.message == message


def test_jid_names_are_left_for_lookup() -> None:
    assert parse_jid("www") == "www"


def test_jls_row_format() -> None:
    row = "%-8s%-15s %-15s %s\n" % (3, "a-very-long-hostname.example.org", "/j", "(none)")
    assert row == "3       a-very-long-hostname.example.org /j              (none)\n"
    assert format_ips([]) == "(none)"
    assert format_ips(["198.51.100.1", "2001:0db8::0001"]) == "2001:db8::1 198.51.100.1"


def test_escape_untrusted_hostname() -> None:
    assert escape("ok.example.org") == "ok.example.org"
    assert escape("a\033[2Jb\nc\\") == "a\\033[2Jb\\012c\\\\"
    assert escape("\x9b") == "\\233"
