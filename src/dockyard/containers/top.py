"""`docker top`: run the host's `ps` and keep the rows of the container's processes (docker's shape)."""

from __future__ import annotations

import subprocess
from typing import Any

from dockyard.errors import InvalidParameter, SystemError_


def top(pids: list[int], ps_args: str | None) -> dict[str, Any]:
    args = (ps_args or "-ef").split()
    try:
        res = subprocess.run(["ps", *args], capture_output=True, text=True, timeout=30)
    except OSError as e:
        raise SystemError_(f"ps: {e}") from None
    if res.returncode != 0:
        raise SystemError_(f"ps: {res.stderr.strip() or 'failed'}")
    lines = res.stdout.splitlines()
    if not lines:
        return {"Titles": [], "Processes": []}
    titles = lines[0].split()
    if "PID" not in titles:
        raise InvalidParameter("Couldn't find PID field in ps output")
    pid_col = titles.index("PID")
    wanted = set(pids)
    procs = []
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)
        if len(fields) <= pid_col:
            continue
        try:
            pid = int(fields[pid_col])
        except ValueError:
            continue
        if pid in wanted:
            procs.append(fields)
    return {"Titles": titles, "Processes": procs}
