"""OCI hooks: run each with the container state as JSON on stdin.

A failing prestart/createRuntime/createContainer/startContainer hook aborts
the operation; poststart/poststop failures are only reported, per the spec.
"""

from __future__ import annotations

import json
import subprocess
import sys

from dockyard.runtime.errors import OCIRuntimeError
from dockyard.runtime.spec import env_to_dict

TYPE_CHECKING = False  # typing costs milliseconds of import on every runtime command
if TYPE_CHECKING:
    from typing import Any

FATAL = frozenset({"prestart", "createRuntime", "createContainer", "startContainer"})


def run_hooks(spec: dict[str, Any], name: str, state: dict[str, Any]) -> None:
    """Run the ``name`` hooks of ``spec`` in order; raise on the first fatal failure."""
    hooks = (spec.get("hooks") or {}).get(name) or []
    if not hooks:
        return
    payload = json.dumps(state).encode()
    for hook in hooks:
        path = hook["path"]
        args = hook.get("args") or [path]
        try:
            result = subprocess.run(
                args,
                executable=path,
                input=payload,
                env=env_to_dict(hook.get("env") or []),
                capture_output=True,
                timeout=hook.get("timeout"),
                check=False,
            )
            if result.returncode != 0:
                err = result.stderr.decode(errors="replace").strip()
                msg = f"error running {name} hook {path}: exit status {result.returncode}" + (
                    f", stderr: {err}" if err else ""
                )
            else:
                continue
        except subprocess.TimeoutExpired:
            msg = f"error running {name} hook {path}: timeout after {hook.get('timeout')}s"
        except OSError as exc:
            msg = f"error running {name} hook {path}: {exc.strerror}"
        if name in FATAL:
            raise OCIRuntimeError(msg, "other")
        print(f"warning: {msg}", file=sys.stderr)
