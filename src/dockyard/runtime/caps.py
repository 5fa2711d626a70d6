"""Linux capabilities: names, the host's bounding set, and the prctl/capset calls (through ``dockyard.sys``).

The container init uses these right before execve, so everything here is a
thin wrapper with no subprocesses.  The engine uses ``normalize`` and
``host_bounding_set`` to turn ``--cap-add``/``--privileged`` into the list the
host can actually grant (a kernel or an outer sandbox may have removed some).
"""

from __future__ import annotations

from collections.abc import Iterable

from dockyard.sys.linux import (
    PR_CAP_AMBIENT,
    PR_CAP_AMBIENT_CLEAR_ALL,
    PR_CAP_AMBIENT_RAISE,
    PR_CAPBSET_DROP,
    PR_CAPBSET_READ,
    PR_SET_KEEPCAPS,
    capset,
    prctl,
)

ALL_CAPS: list[str] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
]

_NUMBERS: dict[str, int] = {name: i for i, name in enumerate(ALL_CAPS)}

# Docker's default set (moby oci/caps/defaults.go), in Docker's order.
DEFAULT_DOCKER_CAPS: list[str] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
]

def normalize(name: str) -> str:
    """Canonical ``CAP_X`` spelling of ``x``, ``X`` or ``CAP_X``; ``ALL`` stays ``ALL``.

    Raises ValueError with Docker's wording for names the kernel does not know.
    """
    upper = name.strip().upper()
    if upper == "ALL":
        return "ALL"
    canonical = upper if upper.startswith("CAP_") else "CAP_" + upper
    if canonical not in _NUMBERS:
        raise ValueError(f'unknown capability: "{canonical}"')
    return canonical


def cap_number(name: str) -> int:
    """Kernel bit number of a capability name (any spelling ``normalize`` accepts)."""
    canonical = normalize(name)
    if canonical == "ALL":
        raise ValueError('"ALL" is not a single capability')
    return _NUMBERS[canonical]


def cap_name(number: int) -> str:
    """``CAP_…`` name for a kernel bit number."""
    if not 0 <= number < len(ALL_CAPS):
        raise ValueError(f"unknown capability number: {number}")
    return ALL_CAPS[number]


def last_cap() -> int:
    """Highest capability the running kernel knows (``/proc/sys/kernel/cap_last_cap``)."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return min(int(f.read()), len(ALL_CAPS) - 1)
    except OSError:
        return len(ALL_CAPS) - 1


def mask_to_names(mask: int, limit: int | None = None) -> list[str]:
    """Names of the bits set in a capability mask, up to ``limit`` (default: kernel's last cap)."""
    top = last_cap() if limit is None else limit
    return [ALL_CAPS[i] for i in range(top + 1) if mask >> i & 1]


def names_to_mask(names: Iterable[str]) -> int:
    """Bit mask of capability names; ``ALL`` sets every known bit."""
    mask = 0
    for name in names:
        canonical = normalize(name)
        if canonical == "ALL":
            mask |= (1 << len(ALL_CAPS)) - 1
        else:
            mask |= 1 << _NUMBERS[canonical]
    return mask


def parse_status_caps(status_text: str) -> dict[str, int]:
    """``{"CapInh": mask, "CapPrm": …, "CapEff": …, "CapBnd": …, "CapAmb": …}`` from /proc/PID/status."""
    masks: dict[str, int] = {}
    for line in status_text.splitlines():
        key, _, value = line.partition(":")
        if key.startswith("Cap"):
            masks[key] = int(value.strip(), 16)
    return masks


def host_bounding_set() -> list[str]:
    """Capabilities this process may still grant: its bounding set, clipped to the kernel's last cap.

    The engine's ``--privileged`` grants exactly this, so a host that lost a
    capability (CAP_SYS_RESOURCE on some sandboxes) does not make start fail.
    """
    with open("/proc/self/status") as f:
        masks = parse_status_caps(f.read())
    return mask_to_names(masks.get("CapBnd", 0), last_cap())


def drop_bounding(keep: Iterable[str]) -> None:
    """Remove every capability not in ``keep`` from the bounding set (needs CAP_SETPCAP)."""
    keep_mask = names_to_mask(keep)
    for number in range(last_cap() + 1):
        if keep_mask >> number & 1:
            continue
        if prctl(PR_CAPBSET_READ, number) == 1:
            prctl(PR_CAPBSET_DROP, number)


def set_keepcaps(on: bool) -> None:
    """Keep permitted capabilities across the setuid() that switches to the container user."""
    prctl(PR_SET_KEEPCAPS, 1 if on else 0)


def set_caps(effective: Iterable[str], permitted: Iterable[str], inheritable: Iterable[str]) -> None:
    """Set the calling thread's capability sets with capset(2), version 3 (64-bit masks)."""
    capset(names_to_mask(effective), names_to_mask(permitted), names_to_mask(inheritable))


def clear_ambient() -> None:
    """Empty the ambient set (so only what the config asks for is raised afterwards)."""
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)


def raise_ambient(names: Iterable[str]) -> None:
    """Raise each capability in the ambient set; each must be permitted and inheritable already."""
    for name in names:
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap_number(name))
