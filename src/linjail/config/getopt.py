"""getopt(3) as BSD has it: options first, stop at the first operand or `--`.

The standard library's getopt imports gettext and re (~30 ms on the start-up
path of every jail); this is the 30 lines jail(8) and jexec(8) need.  An
error says which letter and why (`letter`, `missing`), so that a front end
that words it otherwise (rc.conf's jail_NAME_flags) needs no second parser.
"""
from __future__ import annotations


class GetoptError(Exception):
    """libc's text (`illegal option -- x`); LETTER is the option at fault,
    MISSING says its argument was missing, WORD is the argument it was in."""

    def __init__(self, letter: str, missing: bool, word: str) -> None:
        super().__init__(f"option requires an argument -- {letter}" if missing
                         else f"illegal option -- {letter}")
        self.letter = letter
        self.missing = missing
        self.word = word


def getopt(args: list[str], spec: str) -> tuple[list[tuple[str, str]], list[str]]:
    opts: list[tuple[str, str]] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            return opts, args[i + 1:]
        if not arg.startswith("-") or arg == "-":
            break
        j = 1
        while j < len(arg):
            letter = arg[j]
            at = spec.find(letter)
            if letter == ":" or at < 0:
                raise GetoptError(letter, False, arg)
            if spec[at + 1:at + 2] == ":":
                value = arg[j + 1:]
                if not value:
                    i += 1
                    if i >= len(args):
                        raise GetoptError(letter, True, arg)
                    value = args[i]
                opts.append((f"-{letter}", value))
                break
            opts.append((f"-{letter}", ""))
            j += 1
        i += 1
    return opts, args[i:]
