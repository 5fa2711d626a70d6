"""The OCI runtime tests' helpers: a runtime's command line with its own state root, and its cgroups."""

from __future__ import annotations

import os
import subprocess
import tempfile
from typing import Any

# per test process, so two runs of the suite on one host never share a container cgroup
CGROUP_PARENT = f"dockyard-rt-test-{os.getpid()}"


def cgroup_dirs(name: str) -> list[str]:
    """Directories of cgroup ``name`` (under our test parent) that still exist on any hierarchy."""
    found = []
    base = "/sys/fs/cgroup"
    for hierarchy in os.listdir(base):
        path = os.path.join(base, hierarchy, CGROUP_PARENT, name)
        if os.path.isdir(path):
            found.append(path)
    return found


class Runtime:
    """A runtime's CLI (``dockyard runtime`` or runc) with its own --root; deletes leftovers at the end."""

    def __init__(self, name: str, argv: list[str], root: str) -> None:
        self.name = name
        self.argv = argv
        self.root = root
        self.ids: set[str] = set()

    def cmd(self, *args: str, timeout: float = 60, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        if len(args) > 1 and args[0] in ("create", "run"):
            self.ids.add(args[-1])
        # files, not pipes: a detached container inherits stdout/stderr and would hold a pipe open
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            res = subprocess.run([*self.argv, "--root", self.root, *args], stdout=out, stderr=err, text=True,
                                 timeout=timeout, **kwargs)
            out.seek(0)
            err.seek(0)
            return subprocess.CompletedProcess(res.args, res.returncode, out.read().decode(), err.read().decode())

    def run(self, cid: str, bundle: str) -> subprocess.CompletedProcess[str]:
        return self.cmd("run", "--bundle", bundle, cid)

    def cleanup(self) -> list[str]:
        problems = []
        for cid in sorted(self.ids):
            self.cmd("delete", "--force", cid)
            if os.path.exists(os.path.join(self.root, cid)):
                problems.append(f"{self.name}: state dir of {cid} left")
        return problems
