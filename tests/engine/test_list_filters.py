"""The list filters of /networks, /volumes and /images as docker applies them.

docker's filters.Args: ``name``/``id`` are regular expressions searched in the value (or an exact
match), several values of one key are ORed, several keys are ANDed, ``label`` wants every label
given, ``dangling`` takes true/1/false/0 only, and a key the endpoint does not know is a 400
``invalid filter '<key>'`` (docker 23+ wording, which API 1.47 clients see; dockerd 20.10 capitalizes it,
so messages are compared without case). Run against dockerd too (``--target=dockerd``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import docker
import pytest

from helpers.daemon import TestDaemon


@pytest.fixture(scope="module")
def client(daemon: TestDaemon, busybox_image: str) -> docker.DockerClient:
    return daemon.client()


@pytest.fixture
def tag() -> str:
    return "f" + uuid.uuid4().hex[:8]


def _status(d: TestDaemon, path: str, filters: dict[str, list[str]]) -> tuple[int, object]:
    from urllib.parse import quote

    return d.api_json("GET", f"{path}?filters={quote(json.dumps(filters))}")


@pytest.fixture
def nets(client: docker.DockerClient, tag: str) -> Iterator[list[str]]:
    made = []
    for suffix, labels in (("-web", {"tier": "front", "team": "a"}), ("-db", {"tier": "back"}),
                           ("-web2", {"tier": "front"})):
        made.append(client.networks.create(tag + suffix, labels=labels).id)
    yield made
    for n in made:
        client.api.remove_network(n)


def test_network_filters(daemon: TestDaemon, client: docker.DockerClient, tag: str, nets: list[str]) -> None:
    def names(**flt: list[str]) -> list[str]:
        return sorted(n["Name"] for n in client.api.networks(filters=flt) if n["Name"].startswith(tag))

    assert names(name=[f"^{tag}-web$"]) == [f"{tag}-web"]  # a regex, anchored by the user
    assert names(name=[f"{tag}-web"]) == [f"{tag}-web", f"{tag}-web2"]  # unanchored: found inside
    assert names(name=[f"{tag}-db", f"^{tag}-web$"]) == [f"{tag}-db", f"{tag}-web"]  # values ORed
    assert names(name=[tag], label=["tier=front"]) == [f"{tag}-web", f"{tag}-web2"]  # keys ANDed
    assert names(name=[tag], label=["tier=front", "team=a"]) == [f"{tag}-web"]  # every label wanted
    assert names(name=[tag], label=["team"]) == [f"{tag}-web"]
    assert names(id=[nets[1][3:12]]) == [f"{tag}-db"]  # a piece from inside the id matches too
    assert names(name=[tag], driver=["bridge"]) == sorted([f"{tag}-web", f"{tag}-db", f"{tag}-web2"])
    assert names(name=[tag], driver=["overlay"]) == []
    assert names(name=[tag], type=["builtin"]) == []
    assert names(name=[tag], dangling=["true"]) == sorted([f"{tag}-web", f"{tag}-db", f"{tag}-web2"])
    for bad, msg in (({"until": ["1h"]}, "invalid filter 'until'"), ({"label!": ["x"]}, "invalid filter 'label!'"),
                     ({"colour": ["x"]}, "invalid filter 'colour'"),
                     ({"dangling": ["maybe"]}, "invalid value for filter 'dangling', must be \"true\" (or \"1\"), "
                                               "or \"false\" (or \"0\")")):
        status, body = _status(daemon, "/networks", bad)
        assert status == 400 and msg in body["message"].lower(), (bad, body)  # type: ignore[index]


@pytest.fixture
def vols(client: docker.DockerClient, tag: str) -> Iterator[list[str]]:
    made = [client.volumes.create(tag + s, labels=lab).name
            for s, lab in (("-data", {"tier": "back"}), ("-data2", {}), ("-logs", {"tier": "front"}))]
    yield made
    for v in made:
        client.api.remove_volume(v, force=True)


def test_volume_filters(daemon: TestDaemon, client: docker.DockerClient, tag: str, vols: list[str]) -> None:
    def names(**flt: list[str]) -> list[str]:
        found = client.api.volumes(filters=flt)["Volumes"] or []
        return sorted(v["Name"] for v in found if v["Name"].startswith(tag))

    assert names(name=[f"^{tag}-data$"]) == [f"{tag}-data"]
    assert names(name=[f"{tag}-data"]) == [f"{tag}-data", f"{tag}-data2"]
    assert names(name=[f"{tag}-logs", f"^{tag}-data$"]) == [f"{tag}-data", f"{tag}-logs"]
    assert names(name=[tag], label=["tier"]) == [f"{tag}-data", f"{tag}-logs"]
    assert names(name=[tag], label=["tier=front"]) == [f"{tag}-logs"]
    assert names(name=[tag], driver=["local"]) == sorted(vols)
    assert names(name=[tag], driver=["nfs"]) == []
    assert names(name=[tag], dangling=["1"]) == sorted(vols)
    assert names(name=[tag], dangling=["false"]) == []
    for bad, msg in (({"colour": ["x"]}, "invalid filter 'colour'"),
                     ({"dangling": ["maybe"]}, "invalid filter 'dangling=[maybe]'")):
        status, body = _status(daemon, "/volumes", bad)
        assert status == 400 and msg in body["message"].lower(), (bad, body)  # type: ignore[index]


def test_volume_prune_label_value_is_matched(client: docker.DockerClient, tag: str) -> None:
    """``label=k=v`` prunes only volumes whose label k has the value v (not every one with k)."""
    keep = client.volumes.create(tag + "-keep", labels={"env": "prod"}).name
    drop = client.volumes.create(tag + "-drop", labels={"env": "test"}).name
    try:
        flt = {"label": ["env=test"]}
        if float(client.version()["ApiVersion"]) >= 1.42:  # named volumes are pruned only with all=true since
            flt["all"] = ["true"]
        out = client.api.prune_volumes(filters=flt)
        assert drop in (out["VolumesDeleted"] or []) and keep not in (out["VolumesDeleted"] or [])
    finally:
        for v in (keep, drop):
            try:
                client.api.remove_volume(v)
            except docker.errors.NotFound:
                pass


def test_image_filters(daemon: TestDaemon, client: docker.DockerClient, tag: str) -> None:
    img = client.images.get("busybox:latest")
    img.tag(f"{tag}/one", "v1")
    img.tag(f"{tag}/two", "v2")
    try:
        def tags(**flt: list[str]) -> list[str]:
            return sorted(t for i in client.api.images(filters=flt) for t in i["RepoTags"] or [] if t.startswith(tag))

        assert tags(reference=[f"{tag}/one"]) == [f"{tag}/one:v1"]
        assert tags(reference=[f"{tag}/*"]) == [f"{tag}/one:v1", f"{tag}/two:v2"]  # a glob
        assert tags(reference=[f"{tag}/one", f"{tag}/two:v2"]) == [f"{tag}/one:v1", f"{tag}/two:v2"]  # ORed
        assert tags(reference=[f"{tag}/*:v2"]) == [f"{tag}/two:v2"]
        assert tags(reference=[f"{tag}/*"], dangling=["true"]) == []  # ANDed
        assert tags(reference=[f"{tag}/*"], dangling=["false"]) == [f"{tag}/one:v1", f"{tag}/two:v2"]
        for bad, msg in (({"colour": ["x"]}, "invalid filter 'colour'"),
                         ({"dangling": ["maybe"]}, "invalid filter 'dangling=[maybe]'")):
            status, body = _status(daemon, "/images/json", bad)
            assert status == 400 and msg in body["message"].lower(), (bad, body)  # type: ignore[index]
        status, body = _status(daemon, "/images/json", {"before": ["no-such-image-" + tag]})
        assert status == 404 and "No such image" in body["message"], body  # type: ignore[index]
    finally:
        client.api.remove_image(f"{tag}/one:v1")
        client.api.remove_image(f"{tag}/two:v2")


def test_cli_filter_errors_exit_1(daemon: TestDaemon, nets: list[str]) -> None:
    for cmd in (("network", "ls"), ("volume", "ls"), ("images",)):
        for run in (daemon.docker, daemon.cli):
            p = run(*cmd, "--filter", "colour=red")
            assert p.returncode == 1 and "invalid filter 'colour'" in p.stderr.lower(), (cmd, p.stderr)


def test_cli_lists_match_the_docker_cli(daemon: TestDaemon, tag: str, nets: list[str], vols: list[str]) -> None:
    """network ls and volume ls share docker's list shape: -q, a custom --format overriding -q, filters."""
    for group in ("network", "volume"):
        for extra in (["-q"], ["-q", "--format", "{{.Name}}"], ["--format", "{{.Name}} {{.Scope}}"],
                      ["--format", "table {{.Name}}\t{{.Driver}}"], []):
            args = (group, "ls", "--filter", f"name={tag}", *extra)
            theirs, ours = daemon.docker(*args), daemon.cli(*args)
            if not extra and group == "network":  # the ids differ in length only by --no-trunc; compare names
                theirs, ours = daemon.docker(*args, "--no-trunc"), daemon.cli(*args, "--no-trunc")
            assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout), (args, theirs.stdout)
    for group in ("volume", "network"):
        theirs = daemon.docker(group, "rm", "no-such-" + tag)
        ours = daemon.cli(group, "rm", "no-such-" + tag)
        assert (ours.returncode, ours.stdout, ours.stderr) == (theirs.returncode, theirs.stdout, theirs.stderr)
