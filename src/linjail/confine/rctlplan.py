"""rctl rules as a plan: the limits a jail's rules ask for, computed without
touching the kernel (limits.py makes a Plan real; rctlwatch.py acts on the
rules a Plan says need a watcher)."""
from __future__ import annotations

import resource

from ..record import Record, record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..config.rctl import Rule

#: resources enforced per process by rlimits (setrlimit(2))
RLIMITS: dict[str, int] = {
    "datasize": resource.RLIMIT_DATA,
    "stacksize": resource.RLIMIT_STACK,
    "coredumpsize": resource.RLIMIT_CORE,
    "memorylocked": resource.RLIMIT_MEMLOCK,
    "openfiles": resource.RLIMIT_NOFILE,
    "vmemoryuse": resource.RLIMIT_AS,
}
#: resources enforced by the jail's own IPC namespace (ipc/namespace.c)
IPC = ("nmsgq", "msgqsize", "nsem", "nsemop", "nshm", "shmsize")
#: resources that need a cgroup controller, and which (v2 name)
CONTROLLER = {"memoryuse": "memory", "swapuse": "memory", "maxproc": "pids", "nthr": "pids",
              "pcpu": "cpu", "readbps": "io", "writebps": "io", "readiops": "io",
              "writeiops": "io"}
#: io.max keys (v2) and blkio files (v1)
IO_KEYS = {"readbps": ("rbps", "blkio.throttle.read_bps_device"),
           "writebps": ("wbps", "blkio.throttle.write_bps_device"),
           "readiops": ("riops", "blkio.throttle.read_iops_device"),
           "writeiops": ("wiops", "blkio.throttle.write_iops_device")}


@record()
class Plan(Record):
    """The limits a jail's rules ask for (None: no limit)."""
    memory: int | None = None
    swap: int | None = None
    pids: int | None = None
    cpu: int | None = None                  # percent of one CPU
    io: dict[str, int] = {}                 # readbps ... -> amount
    rlimits: dict[str, int] = {}            # resource name -> amount
    ipc: dict[str, int] = {}
    pty_max: int | None = None
    watch: bool = False                     # log/signal actions, wallclock: a watcher

    def needs_watcher(self, console_log: str | None = None) -> bool:
        """Whether a rule acts after the fact (rctlwatch.py): a log or signal
        action, wallclock, or a memory limit whose kills the console log tells."""
        return self.watch or (self.memory is not None and bool(console_log))

    def devpts_options(self) -> str:
        return "" if self.pty_max is None else f",max={self.pty_max}"

    def set_rlimits(self, pid: int = 0) -> None:
        """soft = hard = amount: jailed root cannot raise a hard limit."""
        for name, amount in self.rlimits.items():
            resource.prlimit(pid, RLIMITS[name], (amount, amount))

    def controllers(self) -> set[str]:
        out = set()
        if self.memory is not None or self.swap is not None:
            out.add("memory")
        if self.pids is not None:
            out.add("pids")
        if self.cpu is not None:
            out.add("cpu")
        if self.io:
            out.add("io")
        return out


def _lower(current: int | None, amount: int) -> int:
    return amount if current is None else min(current, amount)


def plan(rules: list[Rule] | tuple[Rule, ...]) -> Plan:
    memory = swap = pids = cpu = pty = None
    io: dict[str, int] = {}
    rl: dict[str, int] = {}
    ipc: dict[str, int] = {}
    watch = False
    for r in rules:
        amount = r.amount or 0
        if r.action not in ("deny", "throttle") or r.resource == "wallclock":
            watch = True
            continue
        if r.resource == "memoryuse":
            memory = _lower(memory, amount)
        elif r.resource == "swapuse":
            swap = _lower(swap, amount)
        elif r.resource in ("maxproc", "nthr"):
            pids = _lower(pids, amount)
        elif r.resource == "pcpu":
            cpu = _lower(cpu, amount)
        elif r.resource in IO_KEYS:
            io[r.resource] = _lower(io.get(r.resource), amount)
        elif r.resource in RLIMITS:
            rl[r.resource] = _lower(rl.get(r.resource), amount)
        elif r.resource in IPC:
            ipc[r.resource] = _lower(ipc.get(r.resource), amount)
        elif r.resource == "pseudoterminals":
            pty = _lower(pty, amount)
    return Plan(memory=memory, swap=swap, pids=pids, cpu=cpu, io=io, rlimits=rl, ipc=ipc,
                pty_max=pty, watch=watch)
