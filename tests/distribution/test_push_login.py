"""Push and login against the real distribution registry: docker's progress and digest line, layers skipped
on a second push, cross-repository mounts, chunked uploads, round trips that keep image IDs, login writing
config.json like the docker CLI (credential helpers too), wrong passwords storing nothing."""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterator

import pytest

from helpers.daemon import TestDaemon
from helpers.registry import Registry, busybox_layer, files_layer, running_registry, seed_image


def _config(daemon: TestDaemon) -> dict[str, object]:
    path = os.path.join(daemon.env["DOCKER_CONFIG"], "config.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def plain(reg_tmp: str) -> Iterator[Registry]:
    with running_registry(reg_tmp, "http") as reg:
        yield reg


@pytest.fixture(scope="module")
def base(daemon: TestDaemon, plain: Registry) -> str:
    """An image with a busybox layer and a 6 MB random layer (chunked upload), made by a container + commit."""
    seed_image(plain, "seed/base", "v1", [busybox_layer()], cmd=["sh"])
    name = f"{plain.host}/seed/base:v1"
    assert daemon.docker("pull", name).returncode == 0
    r = daemon.docker("run", "--name", "maker", name, "sh", "-c",
                      "head -c 6000000 /dev/urandom > /random.bin && echo pushed-content > /marker")
    assert r.returncode == 0, r.stderr
    r = daemon.docker("commit", "maker", f"{plain.host}/team/made:v1")
    assert r.returncode == 0, r.stderr
    daemon.docker("rm", "maker")
    return f"{plain.host}/team/made:v1"


def test_push_streams_docker_progress_and_round_trips(daemon: TestDaemon, plain: Registry, base: str) -> None:
    r = daemon.docker("push", base)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == f"The push refers to repository [{base.rsplit(':', 1)[0]}]"
    assert any(line.endswith(": Pushed") for line in lines), lines
    assert any(line.endswith(": Mounted from seed/base") for line in lines), lines  # the busybox layer
    last = lines[-1]
    assert last.startswith("v1: digest: sha256:") and " size: " in last
    digest = last.split()[2]
    size = int(last.split()[4])
    status, hdrs, body = plain.get_manifest("team/made", "v1", "application/vnd.docker.distribution.manifest.v2+json")
    assert status == 200 and len(body) == size and hdrs["docker-content-digest"] == digest
    manifest = json.loads(body)
    big = max(manifest["layers"], key=lambda x: x["size"])
    assert big["size"] > 4 << 20  # went through the chunked (PATCH) upload
    st, info = daemon.api_json("GET", f"/images/{base}/json")
    image_id = info["Id"]
    assert f"{base.rsplit(':', 1)[0]}@{digest}" in info["RepoDigests"]
    assert manifest["config"]["digest"] == image_id
    # a second push uploads nothing
    r = daemon.docker("push", base)
    assert r.returncode == 0, r.stderr
    layer_lines = [x for x in r.stdout.splitlines() if re.match(r"^[0-9a-f]{12}: ", x)]
    finals = [x.split(": ", 1)[1] for x in layer_lines if not x.endswith(("Preparing", "Waiting"))]
    assert finals and all(f == "Layer already exists" for f in finals), r.stdout
    # round trip: remove everything local, pull, same image, same content
    daemon.docker("rmi", "-f", image_id)
    r = daemon.docker("pull", base)
    assert r.returncode == 0, r.stderr
    st, info = daemon.api_json("GET", f"/images/{base}/json")
    assert info["Id"] == image_id
    run = daemon.docker("run", "--rm", base, "cat", "/marker")
    assert run.stdout == "pushed-content\n", run.stderr


def test_push_of_missing_image_and_docker_py_stream(daemon: TestDaemon, plain: Registry, base: str) -> None:
    status, _, body = daemon.api("POST", f"/images/{plain.host}/team/absent/push?tag=v1")
    assert status == 404
    assert json.loads(body)["message"] == f"An image does not exist locally with the tag: {plain.host}/team/absent"
    r = daemon.docker("push", f"{plain.host}/team/absent:v1")
    assert r.returncode == 1
    assert f"An image does not exist locally with the tag: {plain.host}/team/absent" in r.stderr
    client = daemon.client()
    client.images.get(base).tag(f"{plain.host}/team/py", "v2")
    events = list(client.images.push(f"{plain.host}/team/py", tag="v2", stream=True, decode=True))
    aux = [e["aux"] for e in events if "aux" in e]
    assert aux and aux[0]["Tag"] == "v2" and aux[0]["Digest"].startswith("sha256:")
    assert any(e.get("status", "").startswith("Mounted from") for e in events)


def test_dockyard_cli_push_all_tags(daemon: TestDaemon, plain: Registry, base: str) -> None:
    repo = f"{plain.host}/team/alltags"
    for t in ("a", "b"):
        assert daemon.cli("tag", base, f"{repo}:{t}").returncode == 0
    r = daemon.cli("push", "-a", repo)
    assert r.returncode == 0, r.stderr
    assert "a: digest: sha256:" in r.stdout and "b: digest: sha256:" in r.stdout
    for t in ("a", "b"):
        assert plain.get_manifest("team/alltags", t, "application/vnd.docker.distribution.manifest.v2+json")[0] == 200
    r = daemon.cli("push", "-q", f"{repo}:a")
    assert r.returncode == 0 and r.stdout == f"{repo}:a\n", r.stdout


def test_login_logout_token_registry(daemon: TestDaemon, reg_tmp: str, base: str) -> None:
    with running_registry(reg_tmp, "token", users={"alice": "secret"}) as reg:
        before = _config(daemon)
        r = daemon.docker("login", "-u", "alice", "-p", "wrong", reg.host)
        assert r.returncode == 1
        assert "unauthorized: incorrect username or password" in r.stderr, r.stderr
        assert _config(daemon) == before  # nothing stored
        r = daemon.docker("login", "-u", "alice", "--password-stdin", reg.host, input="secret\n")
        assert r.returncode == 0 and "Login Succeeded" in r.stdout, r.stderr
        entry = _config(daemon)["auths"][reg.host]  # type: ignore[index]
        assert entry.get("identitytoken") or entry.get("auth")
        name = f"{reg.host}/alice/app:v1"
        assert daemon.docker("tag", base, name).returncode == 0
        r = daemon.docker("push", name)  # credentials from config.json through X-Registry-Auth
        assert r.returncode == 0, r.stderr
        r = daemon.docker("logout", reg.host)
        assert r.returncode == 0 and f"Removing login credentials for {reg.host}" in r.stdout
        assert reg.host not in (_config(daemon).get("auths") or {})  # type: ignore[operator]
        r = daemon.docker("push", name)
        assert r.returncode == 1  # anonymous: no push access


def test_login_basic_registry_dockyard_cli_and_docker_py(daemon: TestDaemon, reg_tmp: str) -> None:
    with running_registry(reg_tmp, "basic", users={"bob": "builder"}) as reg:
        r = daemon.cli("login", "-u", "bob", "--password-stdin", reg.host, input="nope\n")
        assert r.returncode == 1
        assert f"login attempt to http://{reg.host}/v2/ failed with status: 401 Unauthorized" in r.stderr, r.stderr
        assert reg.host not in (_config(daemon).get("auths") or {})  # type: ignore[operator]
        r = daemon.cli("login", "-u", "bob", "--password-stdin", reg.host, input="builder\n")
        assert r.returncode == 0 and r.stdout.strip().endswith("Login Succeeded"), r.stderr
        import base64

        entry = _config(daemon)["auths"][reg.host]  # type: ignore[index]
        assert base64.b64decode(entry["auth"]).decode() == "bob:builder"
        assert stat.S_IMODE(os.stat(os.path.join(daemon.env["DOCKER_CONFIG"], "config.json")).st_mode) == 0o600
        # the docker CLI reads what we wrote
        seed_image(reg, "bob/app", "v1", [files_layer({"f": b"b"})])
        r = daemon.docker("pull", f"{reg.host}/bob/app:v1")
        assert r.returncode == 0, r.stderr
        r = daemon.cli("logout", reg.host)
        assert r.returncode == 0 and f"Removing login credentials for {reg.host}" in r.stdout
        out = daemon.client().login("bob", "builder", registry=reg.host, reauth=True)
        assert out["Status"] == "Login Succeeded"


def test_login_through_a_credential_helper(daemon: TestDaemon, reg_tmp: str) -> None:
    helper_dir = os.path.join(reg_tmp, "helper-bin")
    os.makedirs(helper_dir, exist_ok=True)
    store = os.path.join(reg_tmp, "helper-store.json")
    script = os.path.join(helper_dir, "docker-credential-testhelper")
    with open(script, "w") as f:
        f.write(f"""#!/usr/bin/env python3
import json, sys
path = {store!r}
try:
    data = json.load(open(path))
except OSError:
    data = {{}}
action = sys.argv[1]
inp = sys.stdin.read().strip()
if action == "store":
    o = json.loads(inp); data[o["ServerURL"]] = o; json.dump(data, open(path, "w"))
elif action == "get":
    if inp not in data:
        print("credentials not found in native keychain"); sys.exit(1)
    print(json.dumps(data[inp]))
elif action == "erase":
    data.pop(inp, None); json.dump(data, open(path, "w"))
""")
    os.chmod(script, 0o755)
    cfg_path = os.path.join(daemon.env["DOCKER_CONFIG"], "config.json")
    os.makedirs(os.path.dirname(cfg_path), exist_ok=True)
    cfg = _config(daemon)
    cfg["credsStore"] = "testhelper"
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    env_path = helper_dir + os.pathsep + os.environ.get("PATH", "")
    old = daemon.env["PATH"] if "PATH" in daemon.env else None
    daemon.env["PATH"] = env_path
    try:
        with running_registry(reg_tmp, "basic", users={"carol": "pw"}) as reg:
            r = daemon.cli("login", "-u", "carol", "--password-stdin", reg.host, input="pw\n")
            assert r.returncode == 0, r.stderr
            with open(store) as f:
                assert json.load(f)[reg.host]["Secret"] == "pw"
            assert _config(daemon)["auths"][reg.host] == {}  # type: ignore[index]
            seed_image(reg, "carol/app", "v1", [files_layer({"f": b"c"})])
            r = daemon.cli("pull", f"{reg.host}/carol/app:v1")  # credentials from the helper
            assert r.returncode == 0, r.stderr
            r = daemon.cli("logout", reg.host)
            assert r.returncode == 0
            with open(store) as f:
                assert reg.host not in json.load(f)
    finally:
        if old is None:
            daemon.env.pop("PATH", None)
        else:
            daemon.env["PATH"] = old
        cfg = _config(daemon)
        cfg.pop("credsStore", None)
        with open(cfg_path, "w") as f:
            json.dump(cfg, f)


def test_push_platform_checks_the_single_platform_image(daemon: TestDaemon, plain: Registry, base: str) -> None:
    target = f"{plain.host}/team/plat:v1"
    assert daemon.docker("tag", base, target).returncode == 0
    # another platform: refused before anything is sent (the docker CLI sends it JSON-encoded)
    r = daemon.docker("push", "--platform", "linux/arm64", target)
    assert r.returncode != 0
    assert (f"image with reference {target} was found but does not match the specified platform: "
            "wanted linux/arm64, actual: linux/amd64") in r.stderr, r.stderr
    assert plain.get_manifest("team/plat", "v1", "application/vnd.docker.distribution.manifest.v2+json")[0] == 404
    r = daemon.cli("push", "--platform", "linux/arm64/v8", target)
    assert r.returncode != 0 and "wanted linux/arm64, actual: linux/amd64" in r.stderr, r.stderr
    # the image's own platform: pushed
    r = daemon.cli("push", "--platform", "linux/amd64", target)
    assert r.returncode == 0, r.stderr
    r = daemon.docker("push", "--platform", "linux/amd64", target)
    assert r.returncode == 0 and "v1: digest: sha256:" in r.stdout, r.stderr
    assert plain.get_manifest("team/plat", "v1", "application/vnd.docker.distribution.manifest.v2+json")[0] == 200
    daemon.api("DELETE", f"/images/{target}")
