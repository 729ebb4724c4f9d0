"""The one top-level handler (cli/_main.py) and the message helpers (issue 16)."""
from __future__ import annotations

import errno
import os
import sys

import pytest

from linjail.cli import _main
from linjail.errors import JailError, UsageError, as_bytes, one_line


def test_one_line_escapes_control_characters_only() -> None:
    assert one_line("a\nb\x1b[2J\x7fc\td") == "a\\012b\\033[2J\\177c\td"
    assert one_line("plain \udcff \u00fc") == "plain \udcff \u00fc"


def test_as_bytes_gives_back_the_bytes_and_escapes_what_no_byte_gave() -> None:
    assert as_bytes(os.fsdecode(b"a\xff")) == b"a\xff"
    assert as_bytes("/var/\ud800") == b"/var/\\ud800"


def test_output_never_raises_and_keeps_the_first_error(tmp_path: object) -> None:
    r, w = os.pipe()
    os.close(r)
    out = _main.Output(w, "stdout", line_buffered=True)
    out.write("lost\n")           # EPIPE (SIGPIPE is ignored by Python)
    out.write("\ud800 also lost\n")
    assert out.error == errno.EPIPE
    os.close(w)
    closed = _main.Output(987, "stdout", line_buffered=False)
    closed.write("x")
    closed.flush()
    assert (closed.missing, closed.error) == (True, errno.EBADF)


def _swallowed_ctrl_c(args: list[str]) -> int:
    sys.unraisablehook(type("Info", (), {"exc_value": KeyboardInterrupt()})())
    return 0


def test_a_ctrl_c_that_a_callback_swallowed_is_status_130(capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """'Exception ignored in: <function _get_module_lock.<locals>.cb>' with a
    KeyboardInterrupt was printed when Ctrl-C landed in importlib's callback
    (tests/e2e/test_stdio.py, under load)."""
    monkeypatch.setattr(_main, "_UNRAISED", [])
    monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)
    assert _main.run("jls", _swallowed_ctrl_c, []) == 130
    assert capsys.readouterr() == ("", "")


def _fails(message: str, usage: bool = False) -> object:
    def body(args: list[str]) -> int:
        raise UsageError(message, "jls: illegal option -- \x1b") if usage else \
            JailError(message)
    return body


def test_messages_are_one_line(capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)
    assert _main.run("jexec", _fails("cannot parse jail id: \n."), []) == 1  # type: ignore
    assert capsys.readouterr().err == "jexec: cannot parse jail id: \\012.\n"
    assert _main.run("jls", _fails("usage: jls [-v]", usage=True), []) == 1  # type: ignore
    assert capsys.readouterr().err == "jls: illegal option -- \\033\nusage: jls [-v]\n"


def test_an_interrupt_behind_another_exception_is_130(capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C inside an import: 'RuntimeError: Error calling __set_name__'
    whose cause is the KeyboardInterrupt."""
    def body(args: list[str]) -> int:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as e:
            raise RuntimeError("Error calling __set_name__") from e
    monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)
    assert _main.run("jail", body, []) == 130
    assert capsys.readouterr() == ("", "")


def test_a_message_about_an_interrupt_is_said(capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """`jailctl build` turns ^C into "build: interrupted; nothing left in
    PATH" (status 130): raised inside `except KeyboardInterrupt`, it is the
    command's message, not an interrupted import."""
    def body(args: list[str]) -> int:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise JailError("build: interrupted; nothing left in /j", 130) from None
    monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)
    assert _main.run("jailctl", body, []) == 130
    assert capsys.readouterr() == ("", "jailctl: build: interrupted; nothing left in /j\n")
