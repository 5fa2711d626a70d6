"""Runs docker-py's integration suite against a private dockyard daemon and scores it (see dockerpy.sh).

The daemon is the test suite's TestDaemon (own data root, socket, bridge, subnet, cgroup parent, resource
prefix), so everything it makes is removed at the end, also after a failure or Ctrl-C. The images the suite
expects are one bootstrapped busybox under four names, loaded into the daemon and also pushed to a loopback
distribution registry that the daemon's daemon.json names as its docker.io mirror (the suite's pulls go there).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from helpers.daemon import TestDaemon  # noqa: E402

IMAGES = ("alpine:3.10", "alpine:latest", "busybox:latest", "hello-world:latest")
REGISTRY = "/usr/bin/docker-registry"


@dataclass
class Exclusions:
    files: list[str] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)


def read_exclusions(path: str) -> Exclusions:
    """One file or node id (relative to tests/integration) per line, then '# reason'; a line without a
    reason is refused, so the list cannot grow silently."""
    ex = Exclusions()
    with open(path) as f:
        for n, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith(("#", "[")):
                continue
            target, sep, reason = line.partition("#")
            if not sep or not reason.strip():
                raise SystemExit(f"{path}:{n}: an exclusion needs a reason after '#'")
            target = target.strip()
            (ex.nodes if "::" in target else ex.files).append(target)
    return ex


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Registry:
    """Debian's distribution registry on a loopback port, storage in a temporary directory."""

    def __init__(self, tmp: str) -> None:
        self.dir = os.path.join(tmp, "registry")
        os.makedirs(self.dir)
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        config = os.path.join(self.dir, "config.yml")
        with open(config, "w") as f:
            f.write(f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
                    f"    rootdirectory: {self.dir}/data\nhttp:\n  addr: {self.addr}\n")
        log = open(os.path.join(self.dir, "log"), "ab")
        self.proc = subprocess.Popen([REGISTRY, "serve", config], stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://{self.addr}/v2/", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"registry did not start on {self.addr}")
            time.sleep(0.1)

    def push_archive(self, archive: str, name: str) -> None:
        """Copy a docker-archive into the registry as docker.io's library/<name> would be named there."""
        repo, _, tag = name.partition(":")
        subprocess.run(["skopeo", "copy", "-q", "--dest-tls-verify=false", f"docker-archive:{archive}",
                        f"docker://{self.addr}/library/{repo}:{tag}"], check=True, capture_output=True)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def provide_images(d: TestDaemon, registry: Registry, cache_tar: str) -> None:
    d.load_busybox(cache_tar)
    for name in IMAGES:
        repo, _, tag = name.partition(":")
        if name != "busybox:latest":
            status, _, body = d.api("POST", f"/images/busybox:latest/tag?repo={repo}&tag={tag}")
            if status != 201:
                raise SystemExit(f"tagging {name} failed: {status} {body!r}")
        registry.push_archive(cache_tar, name)


@dataclass
class Score:
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def score(junit: str) -> Score:
    s = Score()
    for case in ET.parse(junit).getroot().iter("testcase"):
        node = f"{case.get('classname', '')}::{case.get('name', '')}"
        kinds = {child.tag for child in case}
        if kinds & {"failure", "error"}:
            s.failed.append(node)
        elif "skipped" in kinds:
            s.skipped.append(node)
        else:
            s.passed.append(node)
    return s


def run_suite(args: argparse.Namespace, d: TestDaemon, ex: Exclusions, home: str, extra: list[str]) -> int:
    junit = os.path.join(args.results, "junit.xml")
    if os.path.exists(junit):
        os.unlink(junit)
    argv = [args.python, "-m", "pytest", "-p", "no:cacheprovider", "-v", "-rfE", "--tb=short",
            f"--timeout={args.timeout}", f"--junitxml={junit}"]
    argv += [f"--ignore=tests/integration/{f}" for f in ex.files]
    argv += [f"--deselect=tests/integration/{n}" for n in ex.nodes]
    argv += extra or ["tests/integration"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "DOCKYARD_"))}
    env.update({"DOCKER_HOST": d.host, "DOCKER_TEST_API_VERSION": "1.41", "HOME": home,
                "DOCKER_CONFIG": os.path.join(home, ".docker"), "PYTHONDONTWRITEBYTECODE": "1"})
    with open(os.path.join(args.results, "pytest.log"), "wb") as log:
        rc = subprocess.run(argv, cwd=args.suite, env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL).returncode
    if not os.path.exists(junit):
        print(f"docker-py's suite produced no results (pytest exit {rc}); see {args.results}/pytest.log")
        return -1
    return rc


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--suite", required=True, help="the unpacked docker-py sdist")
    p.add_argument("--python", required=True, help="the interpreter of the suite's venv")
    p.add_argument("--excludes", required=True)
    p.add_argument("--floor", required=True)
    p.add_argument("--results", required=True)
    p.add_argument("--timeout", type=int, default=int(os.environ.get("DOCKERPY_TIMEOUT", "120")))
    args, extra = p.parse_known_args()
    ex = read_exclusions(args.excludes)
    os.makedirs(args.results, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="dyc", dir="/tmp")
    home = os.path.join(tmp, "home")
    os.makedirs(os.path.join(home, ".docker"))
    # docker-py keeps contexts beside the config file it finds, else in the working directory (the suite's)
    with open(os.path.join(home, ".docker", "config.json"), "w") as f:
        f.write("{}\n")
    registry = Registry(tmp)
    daemon_json = os.path.join(tmp, "daemon.json")
    with open(daemon_json, "w") as f:
        json.dump({"registry-mirrors": [f"http://{registry.addr}"], "insecure-registries": [registry.addr]}, f)
    d = TestDaemon(["--config-file", daemon_json], tmp=os.path.join(tmp, "daemon"))
    left: list[str] = []
    try:
        d.start()
        provide_images(d, registry, os.path.join(os.path.dirname(args.results), "busybox.tar"))
        started = time.monotonic()
        rc = run_suite(args, d, ex, home, extra)
        elapsed = time.monotonic() - started
    finally:
        forced = d.stop()
        left = d.leftovers()
        registry.stop()
        d.remove_tmp()
        if not left:
            shutil.rmtree(tmp, ignore_errors=True)
    if forced or left:
        print(f"cleanup: forced {forced}, left {left}", file=sys.stderr)
    if rc < 0:
        return 1
    s = score(os.path.join(args.results, "junit.xml"))
    with open(os.path.join(args.results, "failed.txt"), "w") as f:
        f.writelines(n + "\n" for n in s.failed)
    for node in s.failed:
        print(f"FAILED {node}")
    print(f"docker-py {len(s.passed) + len(s.failed)} scored, {len(s.skipped)} skipped, {elapsed:.0f} s; "
          f"failures listed in {args.results}/failed.txt")
    with open(args.floor) as f:
        floor = int(next(line for line in f if line.strip() and not line.startswith("#")))
    verdict = 0
    if extra:
        pass  # a partial run is not scored against the floor
    elif len(s.passed) < floor:
        print(f"docker-py conformance fell below its floor: {len(s.passed)} < {floor} passed")
        verdict = 1
    if left:
        verdict = 1
    print(f"{len(s.passed)} passed, {len(s.failed)} failed")
    return verdict


if __name__ == "__main__":
    sys.exit(main())
