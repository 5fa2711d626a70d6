"""Access-control benchmark: the latency bearer tokens add to the Engine API, in one run.

Two private daemons on loopback TCP, alike but for access control (one with --insecure-tcp, one with
--auth-clients), timed alternately: `GET /containers/json` over a kept-alive connection and
`dockyard run --rm busybox true`, each with and without a token. It also times the hook alone in-process
(a cached token: verification, scope and policy), the figure the target is about.
Target: <= 0.5 ms added per request. Everything is removed afterwards, also on failure.
Usage: python bench/auth_bench.py [-n 2000] [--runs 20]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from urllib.parse import urlencode

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from auth.tokenkit import write_clients  # noqa: E402
from helpers.daemon import DOCKYARD, TestDaemon, finish_daemon  # noqa: E402

TARGET_MS = 0.5


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def _token(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/token", urlencode({"grant_type": "client_credentials", "client_id": "bench",
                                              "client_secret": "bench-secret"}),
                 {"Content-Type": "application/x-www-form-urlencoded"})
    doc = json.loads(conn.getresponse().read())
    conn.close()
    return str(doc["access_token"])


def _list_ms(port: int, headers: dict[str, str], n: int) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    out = []
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            conn.request("GET", "/v1.47/containers/json", headers=headers)
            resp = conn.getresponse()
            resp.read()
            out.append((time.perf_counter() - t0) * 1000)
            assert resp.status == 200, resp.status
    finally:
        conn.close()
    return out


def _run_ms(host: str, token: str | None, env: dict[str, str]) -> float:
    argv = [DOCKYARD, "-H", host, *(["--token", token] if token else []), "run", "--rm", "busybox", "true"]
    t0 = time.perf_counter()
    r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    return (time.perf_counter() - t0) * 1000


def _hook_us(n: int) -> float:
    """The hook alone: BearerGate.admit on a request with a cached token (no HTTP)."""
    from email.message import Message

    from dockyard.api.auth_hook import BearerGate
    from dockyard.api.request import Request
    from dockyard.auth.service import AuthService, AuthSettings

    with tempfile.TemporaryDirectory() as d:
        cf = os.path.join(d, "c.yaml")
        write_clients(cf, {"bench": ("bench-secret", ["read", "containers"])})
        svc = AuthService(AuthSettings(data_root=d, clients_file=cf))
        ans = svc.token("application/x-www-form-urlencoded",
                        b"grant_type=client_credentials&client_id=bench&client_secret=bench-secret", None)
        gate = BearerGate(svc)
        headers = Message()
        headers["Authorization"] = f"Bearer {ans.body['access_token']}"
        req = Request("GET", "/containers/json", "", headers, None, None, None, "1.47")  # type: ignore[arg-type]
        assert gate.admit(req) is None
        t0 = time.perf_counter()
        for _ in range(n):
            gate.admit(req)
        return (time.perf_counter() - t0) / n * 1e6


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=2000, help="GET /containers/json requests per round")
    ap.add_argument("--runs", type=int, default=20, help="run --rm true per daemon")
    args = ap.parse_args()
    plain = TestDaemon()
    authd = TestDaemon()
    try:
        p_port, a_port = _free_port(), _free_port()
        plain.extra_args = ["--insecure-tcp", "-H", f"tcp://127.0.0.1:{p_port}"]
        os.makedirs(authd.tmp, exist_ok=True)
        cf = os.path.join(authd.tmp, "clients.yaml")
        write_clients(cf, {"bench": ("bench-secret", ["read", "containers"])})
        authd.extra_args = ["--auth-clients", cf, "-H", f"tcp://127.0.0.1:{a_port}"]
        cache = os.path.join(tempfile.gettempdir(), "dockyard-bench-busybox.tar")
        for d in (plain, authd):
            d.start()
            d.load_busybox(cache)
        token = _token(a_port)
        bearer = {"Authorization": f"Bearer {token}"}
        off: list[float] = []
        on: list[float] = []
        for _ in range(5):  # alternate rounds: both daemons see the same host load
            off += _list_ms(p_port, {}, args.n // 5)
            on += _list_ms(a_port, bearer, args.n // 5)
        run_off: list[float] = []
        run_on: list[float] = []
        for _ in range(args.runs):
            run_off.append(_run_ms(f"tcp://127.0.0.1:{p_port}", None, plain.env))
            run_on.append(_run_ms(f"tcp://127.0.0.1:{a_port}", token, authd.env))
        hook = _hook_us(20000)
    finally:
        for d in (plain, authd):
            finish_daemon(d)
    lo, la = statistics.median(off), statistics.median(on)
    ro, ra = statistics.median(run_off), statistics.median(run_on)
    print(f"{'measure':44} {'no auth':>10} {'auth':>10} {'added':>10}")
    print(f"{'GET /containers/json, median ms':44} {lo:10.3f} {la:10.3f} {la - lo:10.3f}")
    print(f"{'run --rm busybox true, median ms':44} {ro:10.2f} {ra:10.2f} {ra - ro:10.2f}")
    print(f"{'the hook alone (cached token), ms/request':44} {'':10} {'':10} {hook / 1000:10.4f}")
    verdict = "met" if hook / 1000 <= TARGET_MS and la - lo <= TARGET_MS else "NOT met"
    print(f"target <= {TARGET_MS} ms added per request: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
