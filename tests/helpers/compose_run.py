"""`dockyard compose` run in-process, in a given directory: the exit code and what it printed."""

from __future__ import annotations

import io
import os
from pathlib import Path

from dockyard.compose.cli import main as compose_main


def run_compose(cwd: Path | str, *args: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``dockyard compose ARGS`` with ``cwd`` as the working directory."""
    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        code = compose_main(list(args), out=out, err=err)
    finally:
        os.chdir(old)
    return code, out.getvalue(), err.getvalue()
