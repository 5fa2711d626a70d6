"""A container's record and its state machine: created → running ⇄ paused → exited/dead; removing.

The record is plain data (persisted by store.py as JSON columns); the live shim handle rides along unpersisted.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dockyard.errors import InvalidParameter
from dockyard.util.humanize import human_duration

if TYPE_CHECKING:
    from dockyard.containers.shim_client import ShimClient

ZERO_TIME = "0001-01-01T00:00:00Z"


def parse_api_time(value: str | None) -> float | None:
    """docker's `since`/`until`: unix seconds (fractional allowed), RFC3339, or a duration like "10m" (ago)."""
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        pass
    units = {"s": 1, "m": 60, "h": 3600}
    if value[-1] in units and value[:-1].replace(".", "", 1).isdigit():
        return time.time() - float(value[:-1]) * units[value[-1]]
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise InvalidParameter(f"invalid timestamp {value!r}") from None


def now_rfc3339() -> str:
    """RFC3339Nano in UTC, the way docker prints timestamps."""
    ns = time.time_ns()
    base = datetime.fromtimestamp(ns // 1_000_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{ns % 1_000_000_000:09d}Z"


def parse_rfc3339(value: str) -> float:
    """Seconds since the epoch for an RFC3339(Nano) string; 0 for docker's zero time."""
    if not value or value.startswith("0001-"):
        return 0.0
    main, _, rest = value.rstrip("Z").partition(".")
    frac = rest[:9]
    tz = ""
    for sep in ("+", "-"):
        if sep in frac:
            frac, _, tz = frac.partition(sep)
            tz = sep + tz
    dt = datetime.fromisoformat(main + (tz or "+00:00"))
    return dt.timestamp() + (float("0." + frac) if frac else 0.0)


@dataclass
class Health:
    Status: str = "starting"
    FailingStreak: int = 0
    Log: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class State:
    Status: str = "created"  # created | running | paused | restarting | removing | exited | dead
    Running: bool = False
    Paused: bool = False
    Restarting: bool = False
    OOMKilled: bool = False
    Dead: bool = False
    Pid: int = 0
    ExitCode: int = 0
    Error: str = ""
    StartedAt: str = ZERO_TIME
    FinishedAt: str = ZERO_TIME
    Health: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["Health"] is None:
            del d["Health"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> State:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def set_running(self, pid: int, started_at: str | None = None) -> None:
        """``started_at``: taken before the runtime started the process, so it never follows its FinishedAt."""
        self.Status, self.Running, self.Paused, self.Restarting = "running", True, False, False
        self.Pid, self.ExitCode, self.Error, self.OOMKilled, self.Dead = pid, 0, "", False, False
        self.StartedAt = started_at or now_rfc3339()
        if self.Health is not None:
            self.Health = {"Status": "starting", "FailingStreak": 0, "Log": self.Health.get("Log", [])}

    def set_stopped(self, exit_code: int, oom: bool = False, finished_at: str | None = None,
                    error: str = "") -> None:
        self.Status, self.Running, self.Paused, self.Restarting = "exited", False, False, False
        self.Pid, self.ExitCode, self.OOMKilled, self.Error = 0, exit_code, oom, error
        self.FinishedAt = finished_at or now_rfc3339()


def status_text(st: State, now: float | None = None) -> str:
    """The `Status` column of `docker ps`: "Up 3 seconds (healthy)", "Exited (0) 2 minutes ago", "Created"…"""
    now = time.time() if now is None else now
    if st.Status == "removing":
        return "Removal In Progress"
    if st.Running or st.Paused:
        text = "Up " + human_duration(now - parse_rfc3339(st.StartedAt))
        if st.Paused:
            return text + " (Paused)"
        if st.Health:
            hs = st.Health.get("Status", "")
            if hs == "starting":
                return text + " (health: starting)"
            if hs in ("healthy", "unhealthy"):
                return f"{text} ({hs})"
        return text
    if st.Restarting:
        return f"Restarting ({st.ExitCode}) {human_duration(now - parse_rfc3339(st.FinishedAt))} ago"
    if st.Dead:
        return "Dead"
    if st.Status == "created" or st.FinishedAt == ZERO_TIME:
        return "Created"
    return f"Exited ({st.ExitCode}) {human_duration(now - parse_rfc3339(st.FinishedAt))} ago"


@dataclass
class Container:
    """One container's persisted record (inspect is built from it)."""

    id: str
    name: str  # without the leading slash
    created: str
    image_id: str
    image: str  # the reference the user gave (Config.Image)
    config: dict[str, Any]
    host_config: dict[str, Any]
    state: State = field(default_factory=State)
    network_settings: dict[str, Any] = field(default_factory=dict)
    restart_count: int = 0
    runtime: str = "dockyard"
    manually_stopped: bool = False
    has_been_started: bool = False
    mounts: list[dict[str, Any]] = field(default_factory=list)
    path: str = ""
    args: list[str] = field(default_factory=list)
    networking_config: dict[str, Any] = field(default_factory=dict)
    anon_volumes: dict[str, str] = field(default_factory=dict)  # target -> generated volume name
    cgroup_path: str = ""  # the OCI cgroupsPath of the current/last start (stats read it; no config.json parse)
    volumes_from: list[str] = field(default_factory=list)  # --volumes-from resolved at create, as bind specs
    shim: ShimClient | None = None  # live while running; not persisted
    # set by a kill that ends it (SIGKILL, its stop signal, or any signal when it has none): no policy restarts
    # the exit, as docker's ExitOnNext cancels its restart manager; cleared by start; not persisted
    restart_canceled: bool = False

    @property
    def short_id(self) -> str:
        return self.id[:12]
