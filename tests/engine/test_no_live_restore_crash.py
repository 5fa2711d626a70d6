"""--no-live-restore after a crash, as dockerd: the containers the dead daemon left running are stopped at
restore (and started again where their restart policy says so), not kept."""

from __future__ import annotations

import os
import time

from helpers.daemon import TestDaemon, finish_daemon, wait_for


def test_crash_without_live_restore_stops_containers(busybox_tar: str) -> None:
    d = TestDaemon(["--no-live-restore"]).start()
    try:
        d.load_busybox(busybox_tar)
        for name, policy in (("plain", "no"), ("always", "always")):
            status, _ = d.api_json("POST", f"/containers/create?name={name}",
                                   {"Image": "busybox", "Cmd": ["sleep", "300"], "StopTimeout": 1,
                                    "HostConfig": {"RestartPolicy": {"Name": policy}}})
            assert status == 201
            assert d.api("POST", f"/containers/{name}/start")[0] == 204
        pids = {n: d.api_json("GET", f"/containers/{n}/json")[1]["State"]["Pid"] for n in ("plain", "always")}
        d.kill9()
        assert all(os.path.exists(f"/proc/{p}") for p in pids.values())  # a crash stops nothing by itself
        d.start()

        def settled() -> bool:
            plain = d.api_json("GET", "/containers/plain/json")[1]["State"]
            again = d.api_json("GET", "/containers/always/json")[1]["State"]
            return (plain["Status"] == "exited" and again["Running"] and again["Pid"] != pids["always"]
                    and not any(os.path.exists(f"/proc/{p}") for p in pids.values()))

        wait_for(settled, timeout=20)
        time.sleep(0.5)
        assert d.api_json("GET", "/containers/always/json")[1]["State"]["Running"] is True
    finally:
        finish_daemon(d)
