"""confine/devices.py without the kernel: v1's replay of device rules, and
the eBPF bytecode checked instruction by instruction (known encodings) and
by running it in a small interpreter against v1's check for every device
and access of interest."""
from __future__ import annotations

import random
import struct

import pytest

from linjail.confine import devices
from linjail.errors import JailError

B, C = devices.TYPES["b"], devices.TYPES["c"]
M, R, W = devices.ACCESS["m"], devices.ACCESS["r"], devices.ACCESS["w"]


def run(code: bytes, kind: int, major: int, minor: int, access: int) -> int:
    """The eBPF program CODE on struct bpf_cgroup_dev_ctx (the instructions
    program() emits, with the verifier's demands: r0 set before exit, jumps
    inside the program, the context read only as its three u32)."""
    ctx = struct.pack("<III", access << 16 | kind, major, minor)
    regs = [0] * 11
    pc, count = 0, len(code) // 8
    assert len(code) % 8 == 0 and count < 4096
    set_r0 = False
    steps = 0
    while True:
        assert 0 <= pc < count, "jump out of the program"
        steps += 1
        assert steps < 100000
        op, regbyte, off, imm = struct.unpack_from("<BBhi", code, pc * 8)
        dst, src = regbyte & 0xF, regbyte >> 4
        uimm = imm & 0xFFFFFFFF
        pc += 1
        if op == devices.LDX_W:
            assert src == 1 and off in (0, 4, 8)
            regs[dst] = struct.unpack_from("<I", ctx, off)[0]
        elif op == devices.MOV32_IMM:
            regs[dst] = uimm
            set_r0 |= dst == 0
        elif op == devices.MOV32_REG:
            regs[dst] = regs[src] & 0xFFFFFFFF
        elif op == devices.RSH32_IMM:
            regs[dst] = (regs[dst] & 0xFFFFFFFF) >> uimm
        elif op == devices.AND32_IMM:
            regs[dst] = regs[dst] & uimm
        elif op == devices.JNE32_IMM:
            if regs[dst] & 0xFFFFFFFF != uimm:
                pc += off
        elif op == devices.JSET32_IMM:
            if regs[dst] & uimm:
                pc += off
        elif op == devices.JA:
            pc += off
        elif op == devices.EXIT:
            assert set_r0 and regs[0] in (0, 1)
            return regs[0]
        else:
            raise AssertionError(f"opcode {op:#x}")


def test_known_encodings() -> None:
    # as clang/bpftool print them: code, regs (src << 4 | dst), off, imm
    assert devices.PROLOGUE.hex(" ", 8) == (
        "6112000000000000 bc23000000000000 7403000010000000 54020000ffff0000 "
        "6114040000000000 6115080000000000")
    assert devices.program(False, []) == devices.PROLOGUE + bytes.fromhex(
        "b400000000000000" "9500000000000000")
    # deny-all with c 1:3 rw: type, major, minor, asks beyond rw -> next
    assert devices.program(False, [(C, 1, 3, R | W)])[48:] == bytes.fromhex(
        "5602050002000000" "5604040001000000" "5605030003000000" "4603020001000000"
        "b400000001000000" "9500000000000000" "b400000000000000" "9500000000000000")
    # allow-all with b 8:* w: no minor test; JSET then JA over the verdict
    assert devices.program(True, [(B, 8, -1, W)])[48:] == bytes.fromhex(
        "5602050001000000" "5604040008000000" "4603010004000000" "0500020000000000"
        "b400000000000000" "9500000000000000" "b400000001000000" "9500000000000000")


@pytest.mark.parametrize("rules,want", [
    ([(False, "a"), (True, "c 1:3 rwm"), (True, "c 136:* rwm"), (False, "c 1:3 w")],
     (False, [(C, 1, 3, M | R), (C, 136, -1, M | R | W)])),
    # a wildcard deny takes nothing from narrower exceptions (v1 does not split)
    ([(False, "a"), (True, "c 1:3 rwm"), (False, "c *:* rwm")], (False, [(C, 1, 3, 7)])),
    # allows of the same device merge; "a" resets
    ([(False, "a"), (True, "c 1:3 r"), (True, "c 1:3 w")], (False, [(C, 1, 3, R | W)])),
    ([(False, "a"), (True, "c 1:3 r"), (True, "a")], (True, [])),
    ([(True, "a"), (False, "b 8:* rw"), (True, "b 8:* w")], (True, [(B, 8, -1, R)])),
    ([(True, "a"), (False, "b 8:* rw"), (True, "b 8:* rw")], (True, [])),
    ([], (True, [])),
])
def test_emulate(rules: list[devices.Rule], want: tuple[bool, list[devices.Exception_]]) -> None:
    assert devices.emulate(rules) == want


def test_v1_check() -> None:
    deny_all = [(C, 1, -1, R), (C, 1, 3, W)]
    # one exception must grant all that is asked (r of 1:* and w of 1:3 do not add up)
    assert devices.allowed(False, deny_all, C, 1, 3, R)
    assert devices.allowed(False, deny_all, C, 1, 3, W)
    assert not devices.allowed(False, deny_all, C, 1, 3, R | W)
    assert not devices.allowed(False, deny_all, B, 1, 3, R)
    # allow-all: any access an exception names is refused
    assert not devices.allowed(True, [(B, 8, -1, W)], B, 8, 1, R | W)
    assert devices.allowed(True, [(B, 8, -1, W)], B, 8, 1, R)
    assert devices.allowed(True, [(B, 8, -1, W)], C, 8, 1, W)


def _cases() -> list[tuple[int, int, int, int]]:
    return [(kind, major, minor, access) for kind in (B, C) for major in (0, 1, 5, 136, 4094)
            for minor in (0, 1, 3, 5, 1048575) for access in range(1, 8)]


@pytest.mark.parametrize("seed", range(40))
def test_program_is_v1s_check(seed: int) -> None:
    """Random rule lists: the program answers as v1's check over emulate()."""
    rnd = random.Random(seed)
    numbers = ["*", "0", "1", "3", "5", "136", "1048575", "4094"]
    rules: list[devices.Rule] = []
    for _ in range(rnd.randrange(0, 12)):
        if rnd.random() < 0.12:
            rules.append((rnd.random() < 0.5, "a"))
            continue
        access = "".join(a for a in "rwm" if rnd.random() < 0.6) or "r"
        rules.append((rnd.random() < 0.5, f"{rnd.choice('bc')} {rnd.choice(numbers)}:"
                      f"{rnd.choice(numbers)} {access}"))
    allow_all, exceptions = devices.emulate(rules)
    code = devices.program(allow_all, exceptions)
    for case in _cases():
        assert run(code, *case) == devices.allowed(allow_all, exceptions, *case), (rules, case)


def test_one_list_of_jail_devices() -> None:
    from linjail.confine.rootfs import _DEV_NODES
    from linjail.oci import cgroups, config
    assert cgroups.JAIL_DEVICE_RULES == devices.JAIL_DEVICE_RULES
    nodes = {f"c {major}:{minor} rwm" for _, major, minor in _DEV_NODES}
    assert nodes | {"c 5:2 rwm", "c 136:* rwm"} == set(devices.JAIL_DEVICE_RULES)
    assert {f"c {a}:{b} rwm" for a, b in config.JAIL_DEVICES.values()} | {"c 136:* rwm"} \
        == set(devices.JAIL_DEVICE_RULES)
    assert devices.JAIL_RULES[0] == (False, "a")


def test_jail_policy() -> None:
    """podman's rules (deny all) then a jail's devices: null opens, sda does not."""
    rules = [(False, "a"), (False, "a"), (True, "c 1:3 rwm"), (True, "c 136:* rwm")]
    code = devices.program(*devices.emulate(rules))
    assert run(code, C, 1, 3, R | W) == 1 and run(code, C, 136, 7, R) == 1
    assert run(code, C, 1, 5, R) == 0 and run(code, B, 8, 0, R) == 0
    assert run(code, B, 1, 3, R) == 0


@pytest.mark.parametrize("line", ["c 1:3", "x 1:3 r", "c 1 r", "c 1:3 rx", "c -5:3 r",
                                  "c 4294967295:1 r", "c 1:3 ", "c a:3 r",
                                  "c -1:3 r", "c 1:2:3 r"])
def test_bad_lines(line: str) -> None:
    with pytest.raises(JailError) as e:
        devices.parse(line)
    assert str(e.value) == f"{line}: not a device rule"
