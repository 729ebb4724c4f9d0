"""`linjail-oci features`: what this runtime implements (runtime-spec features.md).

Generated from the same tables the config reader checks against, so the
answer cannot drift from what `create` accepts.
"""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def features() -> dict[str, Any]:
    from .. import __version__
    from ..confine import caps
    from ..state.knobs import get_defaults
    from . import config, seccomp
    keep = sorted(caps.keep_set(get_defaults()))
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": config.OCI_VERSION,
        "hooks": list(config.HOOK_NAMES),
        "mountOptions": sorted(config.FLAG_OPTIONS - config.REFUSED_OPTIONS),
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": [f"CAP_{caps.NAMES[c]}" for c in keep],
            # v1 hierarchies where the kernel mounts them, cgroup2 otherwise (cgroups.py)
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False,
                       "rdma": False},
            # linux.seccomp, compiled with libseccomp, under the jail's own filter
            "seccomp": {"enabled": True,
                        "actions": sorted(seccomp.ACTIONS),
                        "operators": sorted(seccomp.OPERATORS),
                        "archs": sorted(seccomp.ARCHES),
                        "knownFlags": sorted(seccomp.KNOWN_FLAGS),
                        "supportedFlags": sorted(seccomp.HARMLESS_FLAGS)},
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": False}},
        },
        "annotations": {
            "org.linjail.version": __version__,
            # linux.resources.devices (cgroups.py, confine/devices.py)
            "org.linjail.cgroup.devices": "ebpf,v1",
        },
    }
