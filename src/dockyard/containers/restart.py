"""Restart policies with docker's back-off: 100 ms doubling per restart, reset after 10 s of running, max 1 min."""

from __future__ import annotations

from dataclasses import dataclass

BACKOFF_START = 0.1
BACKOFF_MAX = 60.0
RESET_AFTER = 10.0


@dataclass
class Backoff:
    delay: float = 0.0

    def next(self, ran_for: float) -> float:
        """The wait before the next restart, given how long the container ran this time."""
        if ran_for >= RESET_AFTER or self.delay == 0:
            self.delay = BACKOFF_START
        else:
            self.delay = min(self.delay * 2, BACKOFF_MAX)
        return self.delay


def should_restart(policy: dict[str, object], exit_code: int, restart_count: int, manually_stopped: bool) -> bool:
    """Whether the policy restarts a container that exited (not by `stop`, which never restarts).

    ``manually_stopped`` (set by `kill`) only holds back unless-stopped, as in docker's restart manager.
    """
    name = policy.get("Name") or "no"
    if name == "always":
        return True
    if name == "unless-stopped":
        return not manually_stopped
    if name == "on-failure":
        limit = int(policy.get("MaximumRetryCount") or 0)  # type: ignore[call-overload]
        return exit_code != 0 and (limit == 0 or restart_count < limit)
    return False


def start_at_boot(policy: dict[str, object], has_been_started: bool, manually_stopped: bool) -> bool:
    """A stopped container the daemon starts when it comes up (docker: always, and unless-stopped unless stopped)."""
    if not has_been_started:
        return False
    name = policy.get("Name") or "no"
    return name == "always" or (name == "unless-stopped" and not manually_stopped)
