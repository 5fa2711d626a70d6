"""Two builds of the same tags at once: the second finds the context slot held and unpacks into a directory of
its own, which goes when it ends; nothing is left in the builder's scratch dir (the API fuzz found one left)."""

from __future__ import annotations

import os
import socket
import threading
import time

from helpers.daemon import TestDaemon
from helpers.registry import files_layer as _tar


def test_second_build_of_a_held_slot_leaves_nothing(daemon: TestDaemon, busybox_image: str) -> None:
    d = daemon
    scratch = os.path.join(d.data_root, "build", "tmp")
    held = _tar({"Dockerfile": b"FROM busybox\nCOPY pad /pad\n", "pad": os.urandom(4 << 20)})
    s = socket.socket(socket.AF_UNIX)
    s.connect(d.socket)
    try:
        s.sendall(b"POST /v1.47/build?t=slot%2Fheld HTTP/1.1\r\nHost: d\r\nContent-Type: application/x-tar\r\n"
                  b"Content-Length: " + str(len(held)).encode() + b"\r\n\r\n" + held[:64 << 10])
        deadline = time.monotonic() + 10
        while not os.listdir(scratch) and time.monotonic() < deadline:
            time.sleep(0.05)  # the first build has its work dir: it holds the slot, reading its upload
        body = _tar({"Dockerfile": b"FROM busybox\nLABEL second=1\n"})
        status, _, out = d.api("POST", "/build?t=slot%2Fheld", body, headers={"Content-Type": "application/x-tar"})
        assert status == 200 and b"Successfully built" in out, out
        s.sendall(held[64 << 10:])
        s.settimeout(60)
        answer = b""
        while b"Successfully tagged" not in answer and b"errorDetail" not in answer:
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
        assert b"Successfully tagged slot/held:latest" in answer, answer[-2000:]
    finally:
        s.close()
    deadline = time.monotonic() + 10
    while os.listdir(scratch) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert os.listdir(scratch) == []
    assert d.docker("rmi", "slot/held").returncode == 0


def test_builds_claiming_and_evicting_slots_at_once_answer_as_callers_errors(daemon: TestDaemon) -> None:
    """More tags than slots, three builds at a time: each claim may evict another's slot as it is taken. Every
    build of a context without a Dockerfile is the caller's 400, never a 500 from a lock file gone meanwhile."""
    answers: list[tuple[int, bytes]] = []

    def builds(n: int) -> None:
        for i in range(150):
            tag = f"ev{(n + i) % 9}" if i % 3 else ""
            status, _, body = daemon.api("POST", f"/build?t={tag}" if tag else "/build", b"\x005",
                                         headers={"Content-Type": "application/octet-stream"})
            answers.append((status, body))

    workers = [threading.Thread(target=builds, args=(n,)) for n in range(3)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert len(answers) == 450
    assert [a for a in answers if a[0] != 400] == []
    assert os.listdir(os.path.join(daemon.data_root, "build", "tmp")) == []
