"""The import contract (pyproject's [tool.importlinter]) holds on the tree and breaks on a wrong import.

Each case copies the package to a scratch dir, adds one import that crosses a layer, and runs `lint-imports`
on the copy: it must fail and name that import. The untouched copy must pass, so this test also fails when
the tree itself breaks the layering.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LINT = os.path.join(os.path.dirname(sys.executable), "lint-imports")


def _lint(tmp: str, module: str | None = None, line: str = "") -> subprocess.CompletedProcess[str]:
    src = os.path.join(tmp, "src")
    shutil.copytree(os.path.join(ROOT, "src", "dockyard"), os.path.join(src, "dockyard"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    shutil.copy(os.path.join(ROOT, "pyproject.toml"), tmp)
    if module is not None:
        path = os.path.join(src, *module.split(".")) + ".py"
        with open(path) as f:
            text = f.read()
        anchor = "from __future__ import annotations\n"
        assert anchor in text, path
        with open(path, "w") as f:
            f.write(text.replace(anchor, anchor + line + "\n", 1))
    env = {**os.environ, "PYTHONPATH": src}
    return subprocess.run([LINT, "--no-cache"], cwd=tmp, env=env, capture_output=True, text=True, timeout=120)


def test_the_tree_keeps_every_contract(tmp_path: object) -> None:
    res = _lint(str(tmp_path))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 broken" in res.stdout


@pytest.mark.parametrize(("module", "line", "needle"), [
    # storage must not know any service
    ("dockyard.storage.snapshots", "from dockyard.images import service as _bad", "dockyard.storage.snapshots -> "
     "dockyard.images.service"),
    # a service must not type its streams by the API's classes (typing-only imports count)
    ("dockyard.containers.execs", "from dockyard.api.request import Hijacked as _Bad", "dockyard.containers.execs -> "
     "dockyard.api.request"),
    # the client must not reach into the CLI, nor the CLI into a service
    ("dockyard.client.api_client", "import dockyard.cli.app as _bad", "dockyard.client.api_client -> dockyard.cli.app"),
    ("dockyard.cli.app", "import dockyard.containers.service as _bad", "dockyard.cli.app -> "
     "dockyard.containers.service"),
])
def test_a_wrong_import_breaks_the_contract(tmp_path: object, module: str, line: str, needle: str) -> None:
    res = _lint(str(tmp_path), module, line)
    assert res.returncode != 0, res.stdout
    assert "BROKEN" in res.stdout and needle in res.stdout, res.stdout + res.stderr
