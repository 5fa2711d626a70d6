"""Clients against a token-protected daemon: the docker CLI and docker-py through HttpHeaders, the dockyard CLI
(--token, DOCKYARD_TOKEN, auth login); the unix socket under tokens; the token endpoint on its own port."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator

import pytest

from auth.authd import AuthDaemon
from helpers.daemon import DOCKER, DOCKYARD, finish_daemon


def _docker_config(authd: AuthDaemon, name: str, token: str | None) -> str:
    d = os.path.join(authd.d.tmp, name)
    os.makedirs(d, exist_ok=True)
    conf = {"HttpHeaders": {"Authorization": f"Bearer {token}"}} if token else {}
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(conf, f)
    return d


def _env(authd: AuthDaemon, config_dir: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DOCKYARD_TOKEN", "DOCKER_CONTEXT")}
    env.update({"DOCKER_HOST": authd.tcp_host, "DOCKYARD_HOST": authd.tcp_host, "DOCKER_CONFIG": config_dir})
    env.update(extra)
    return env


def _run(argv: list[str], env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.docker_cli
def test_docker_cli_with_http_headers(authd: AuthDaemon) -> None:
    env = _env(authd, _docker_config(authd, "dk-ci", authd.token("ci")))
    r = _run([DOCKER, "run", "-d", "--name", "dk-auth", "busybox", "sleep", "60"], env)
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    try:
        r = _run([DOCKER, "ps", "--format", "{{.ID}} {{.Names}}"], env)
        assert r.returncode == 0 and f"{cid[:12]} dk-auth" in r.stdout, r.stderr
        r = _run([DOCKER, "exec", "dk-auth", "echo", "hello from exec"], env)
        assert r.returncode == 0 and r.stdout == "hello from exec\n", r.stderr
        r = _run([DOCKER, "run", "--rm", "--privileged", "busybox", "true"], env)
        assert r.returncode == 125 and "authorization denied by policy rule privileged" in r.stderr
        r = _run([DOCKER, "run", "--rm", "-v", "/:/host", "busybox", "true"], env)
        assert r.returncode == 125 and "policy rule host-bind" in r.stderr
    finally:
        r = _run([DOCKER, "rm", "-f", "dk-auth"], env)
        assert r.returncode == 0, r.stderr
    assert cid not in authd.container_ids()
    # the same CLI without the header is refused
    r = _run([DOCKER, "ps"], _env(authd, _docker_config(authd, "dk-none", None)))
    assert r.returncode == 1 and "no bearer token" in r.stderr


def test_docker_py_with_http_headers(authd: AuthDaemon) -> None:
    import docker

    conf = _docker_config(authd, "py-ci", authd.token("ci"))
    old = os.environ.get("DOCKER_CONFIG")
    os.environ["DOCKER_CONFIG"] = conf  # docker-py reads config.json (and its HttpHeaders) when the client is made
    try:
        client = docker.DockerClient(base_url=authd.tcp_host, timeout=60)
    finally:
        if old is None:
            del os.environ["DOCKER_CONFIG"]
        else:
            os.environ["DOCKER_CONFIG"] = old
    c = client.containers.run("busybox", ["sleep", "60"], detach=True, name="py-auth")
    try:
        assert [x.name for x in client.containers.list()] == ["py-auth"]
        code, out = c.exec_run(["echo", "from docker-py"])
        assert code == 0 and out == b"from docker-py\n"
        with pytest.raises(docker.errors.APIError) as e:
            client.containers.run("busybox", "true", privileged=True, remove=True)
        assert e.value.status_code == 403 and "policy rule privileged" in str(e.value)
    finally:
        c.remove(force=True)
    assert "py-auth" not in json.dumps(authd.d.api_json("GET", "/containers/json?all=1")[1])
    client.close()


def test_dockyard_cli_token_flag_env_and_login(authd: AuthDaemon) -> None:
    conf = _docker_config(authd, "dy-none", None)
    env = _env(authd, conf)
    r = _run([DOCKYARD, "ps"], env)
    assert r.returncode == 1 and "no bearer token" in r.stderr
    tok = authd.token("ro")
    r = _run([DOCKYARD, "--token", tok, "ps", "-a"], env)
    assert r.returncode == 0 and r.stdout.startswith("CONTAINER ID"), r.stderr
    r = _run([DOCKYARD, "ps"], _env(authd, conf, DOCKYARD_TOKEN=tok))
    assert r.returncode == 0, r.stderr
    r = _run([DOCKYARD, "run", "--rm", "busybox", "true"], _env(authd, conf, DOCKYARD_TOKEN=tok))
    assert r.returncode == 125 and "needs scope containers" in r.stderr
    # login stores the token in the config's HttpHeaders; dockyard and docker then send it
    r = _run([DOCKYARD, "auth", "login", "--client-id", "ci", "--client-secret-stdin"], env, stdin="ci-secret\n")
    assert r.returncode == 0 and r.stdout.startswith("Login Succeeded"), r.stderr
    with open(os.path.join(conf, "config.json")) as f:
        stored = json.load(f)
    assert stored["HttpHeaders"]["Authorization"].startswith("Bearer ey")
    assert oct(os.stat(os.path.join(conf, "config.json")).st_mode & 0o777) == "0o600"
    r = _run([DOCKYARD, "run", "--rm", "busybox", "echo", "logged in"], env)
    assert r.returncode == 0 and r.stdout == "logged in\n", r.stderr
    r = _run([DOCKYARD, "run", "--rm", "--network", "host", "busybox", "true"], env)
    assert r.returncode == 125 and "policy rule network-host" in r.stderr
    r = _run([DOCKYARD, "auth", "login", "--client-id", "ci", "--client-secret-stdin"], env, stdin="wrong\n")
    assert r.returncode == 1 and "client authentication failed" in r.stderr
    with open(os.path.join(conf, "config.json")) as f:
        assert json.load(f) == stored  # a failed login keeps the stored token


@pytest.fixture(scope="module")
def strict() -> Iterator[AuthDaemon]:
    """Tokens on the unix socket too, and the token endpoint on a port of its own."""
    a = AuthDaemon(["--auth-allow-socket=false"], token_port=True)
    try:
        yield a.start()
    finally:
        finish_daemon(a.d)


def test_socket_needs_tokens_when_told(strict: AuthDaemon) -> None:
    assert strict.d.api("GET", "/_ping")[0] == 200
    status, headers, _ = strict.d.api("GET", "/containers/json")
    assert status == 401 and 'error="invalid_token"' in headers["www-authenticate"]
    tok = strict.token("ro")
    assert strict.d.api("GET", "/containers/json", headers={"Authorization": f"Bearer {tok}"})[0] == 200
    r = strict.d.cli("--token", tok, "ps")
    assert r.returncode == 0, r.stderr


def test_token_endpoint_on_its_own_port(strict: AuthDaemon) -> None:
    status, doc = strict.token_response({"grant_type": "client_credentials", "client_id": "ci",
                                         "client_secret": "ci-secret"})
    assert status == 200 and doc["token_type"] == "Bearer"
    # the API's port has no token endpoint now, and the token port serves nothing else
    assert strict.http("POST", "/token", b"grant_type=client_credentials",
                       {"Content-Type": "application/x-www-form-urlencoded"})[0] == 401
    assert strict.http("GET", "/containers/json", port=strict.token_port)[0] == 404
    r = strict.d.cli("-H", strict.tcp_host, "auth", "login", "--client-id", "ci", "--client-secret-stdin",
                     "--token-url", f"http://127.0.0.1:{strict.token_port}/token", input="ci-secret")
    assert r.returncode == 0, r.stderr


def test_first_client_on_a_fresh_daemon() -> None:
    """No clients file yet: the daemon starts, refuses every token request, and serves the first client added."""
    a = AuthDaemon()
    os.unlink(a.clients_file)
    try:
        a.start()
        form = {"grant_type": "client_credentials", "client_id": "first", "client_secret": "first-secret"}
        assert a.token_response(form)[0] == 401
        r = a.d.cli("auth", "client", "add", "first", "--scope", "read", "--secret-stdin", "--cost", "4",
                    input="first-secret")
        assert r.returncode == 0, r.stderr
        status, doc = a.token_response(form)
        assert status == 200 and doc["scope"] == "read"
        assert os.path.exists(a.clients_file)
    finally:
        finish_daemon(a.d)
