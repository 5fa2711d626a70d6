"""OCI hooks run at their points in the lifecycle with the state on stdin."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from helpers.runtime import Runtime


@pytest.mark.dockyard_only("dockyard passes startContainer hooks the state 'running'; runc 1.1.5 passes 'created'")
def test_hooks_run_in_order_with_state(make_bundle: Any, dockyard_rt: Runtime, tmp_path: Any) -> None:
    log = tmp_path / "hooks.log"

    def host_hook(name: str) -> dict[str, Any]:
        return {"path": "/bin/sh", "args": ["sh", "-c", f"echo {name} $(cat) >> {log}"]}

    def hooks(config: dict[str, Any]) -> None:
        config["root"]["readonly"] = False
        config["hooks"] = {
            "prestart": [host_hook("prestart")],
            "createRuntime": [host_hook("createRuntime")],
            "createContainer": [host_hook("createContainer")],
            "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "cat > /tmp/started-state"]}],
            "poststart": [host_hook("poststart")],
            "poststop": [host_hook("poststop")],
        }

    bundle = make_bundle(["sh", "-c", "cat /tmp/started-state; rm /tmp/started-state"], hooks, name="hooked")
    res = dockyard_rt.run("hooked", bundle)
    assert res.returncode == 0, res.stderr
    inner = json.loads(res.stdout)
    assert inner["id"] == "hooked" and inner["status"] == "running"
    lines = log.read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["prestart", "createRuntime", "createContainer", "poststart",
                                                    "poststop"]
    states = [json.loads(line.split(" ", 1)[1]) for line in lines]
    assert all(s["id"] == "hooked" and s["bundle"] == bundle for s in states)
    assert states[0]["pid"] > 1 and states[0]["status"] == "creating"
    assert states[-1]["status"] == "stopped"


@pytest.mark.dockyard_only("dockyard runtime's own words for a bad bundle; runc 1.1.5 words it differently (not aligned yet)")
def test_failing_prestart_hook_aborts_create(make_bundle: Any, dockyard_rt: Runtime) -> None:
    def hooks(config: dict[str, Any]) -> None:
        config["hooks"] = {"prestart": [{"path": "/bin/false"}]}

    res = dockyard_rt.run("hookfail", make_bundle(["true"], hooks, name="hookfail"))
    assert res.returncode == 1
    assert "error running prestart hook /bin/false" in res.stderr
    assert not os.path.exists(os.path.join(dockyard_rt.root, "hookfail"))
