"""The OCI distribution spec's workflows as a table: each request, and the status, headers and body expected.

Modelled on the spec's conformance suite (pull, push, content discovery, content management), run against a
real `dockyard registry serve` process with two worker processes (so chunks of one upload may land on either).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

import pytest
from regserver import Answer, RegistryProcess, image_manifest, sha

CONFIG = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
LAYER = os.urandom(3000)
CHUNK_A, CHUNK_B = LAYER[:1000], LAYER[1000:]
MANIFEST = json.dumps(image_manifest(sha(CONFIG), len(CONFIG), sha(LAYER), len(LAYER))).encode()
ARTIFACT = json.dumps(image_manifest(sha(CONFIG), len(CONFIG), sha(LAYER), len(LAYER), artifactType="application/x-sig",
                                     subject={"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                              "digest": sha(MANIFEST), "size": len(MANIFEST)})).encode()
OCI = "application/vnd.oci.image.manifest.v1+json"
DOCKER = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


def _docker_manifest(arch_note: str) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": DOCKER,
                       "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                                  "digest": sha(CONFIG), "size": len(CONFIG)},
                       "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                                   "digest": sha(LAYER), "size": len(LAYER)}],
                       "annotations": {"note": arch_note}}).encode()


def _docker_list(*entries: tuple[bytes, str]) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": [
        {"mediaType": DOCKER, "digest": sha(m), "size": len(m), "platform": {"architecture": arch, "os": "linux"}}
        for m, arch in entries]}).encode()


AMD64, ARM64 = _docker_manifest("amd64"), _docker_manifest("arm64")
LIST = _docker_list((ARM64, "arm64"), (AMD64, "amd64"))
ARM_LIST = _docker_list((ARM64, "arm64"))
ZERO = "sha256:" + "0" * 64
UUID_RE = r"[0-9a-f-]{36}"


def LOC(path: str) -> str:  # noqa: N802 - reads as a pattern in the table
    """A Location: our relative path, or (distribution) an absolute URL, upload URLs with a state query."""
    return r"(?:https?://[^/]+)?" + path + r"(?:\?.*)?"


@dataclass
class Step:
    method: str
    path: str  # "{upload}" etc. are replaced by values captured earlier
    status: int
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    want_headers: dict[str, str] = field(default_factory=dict)  # name -> regex (fullmatch)
    want_json: Any = None  # a dict is matched as a subset
    want_body: bytes | None = None
    want_code: str | None = None
    capture: dict[str, str] = field(default_factory=dict)  # var -> header
    ours_only: bool = False  # a behaviour the spec leaves open (or distribution 2.8 lacks): not checked there


def setup_image() -> list[Step]:
    """The config and layer by POST then PUT (the upload every registry has), and the manifest as v1."""
    return [
        Step("POST", "/v2/test/repo/blobs/uploads/", 202, capture={"setup1": "Location"}),
        Step("PUT", "{setup1}?digest=" + sha(CONFIG), 201, CONFIG),
        Step("POST", "/v2/test/repo/blobs/uploads/", 202, capture={"setup2": "Location"}),
        Step("PUT", "{setup2}?digest=" + sha(LAYER), 201, LAYER),
        Step("PUT", "/v2/test/repo/manifests/v1", 201, MANIFEST, {"Content-Type": OCI}),
    ]


WORKFLOWS: dict[str, list[Step]] = {
    "pull": setup_image() + [
        Step("GET", "/v2/", 200, want_json={}, want_headers={"Docker-Distribution-API-Version": "registry/2.0"}),
        Step("GET", "/v2/test/repo/manifests/v1", 200, want_body=MANIFEST,
             want_headers={"Content-Type": re.escape(OCI), "Docker-Content-Digest": sha(MANIFEST),
                           "Content-Length": str(len(MANIFEST))}),
        Step("HEAD", "/v2/test/repo/manifests/v1", 200, want_body=b"",
             want_headers={"Docker-Content-Digest": sha(MANIFEST), "Content-Length": str(len(MANIFEST))}),
        Step("GET", f"/v2/test/repo/manifests/{sha(MANIFEST)}", 200, want_body=MANIFEST),
        Step("GET", "/v2/test/repo/manifests/nope", 404, want_code="MANIFEST_UNKNOWN"),
        # a client that lists only docker's manifest type is not sent an OCI manifest
        Step("GET", "/v2/test/repo/manifests/v1", 404, headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
             want_code="MANIFEST_UNKNOWN"),
        Step("GET", "/v2/test/repo/manifests/v1", 200, headers={"Accept": f"application/json, {OCI};q=0.9"},
             want_body=MANIFEST, ours_only=True),  # distribution 2.8 reads only the first of a comma list
        Step("GET", f"/v2/test/repo/manifests/{ZERO}", 404, want_code="MANIFEST_UNKNOWN"),
        Step("GET", f"/v2/test/repo/blobs/{sha(LAYER)}", 200, want_body=LAYER,
             want_headers={"Docker-Content-Digest": sha(LAYER), "Content-Length": str(len(LAYER)),
                           "Accept-Ranges": "bytes"}),
        Step("HEAD", f"/v2/test/repo/blobs/{sha(LAYER)}", 200, want_body=b"",
             want_headers={"Content-Length": str(len(LAYER)), "Docker-Content-Digest": sha(LAYER)}),
        Step("GET", f"/v2/test/repo/blobs/{sha(LAYER)}", 206, headers={"Range": "bytes=10-19"},
             want_body=LAYER[10:20], want_headers={"Content-Range": f"bytes 10-19/{len(LAYER)}",
                                                   "Content-Length": "10"}),
        Step("GET", f"/v2/test/repo/blobs/{sha(LAYER)}", 206, headers={"Range": "bytes=-5"},
             want_body=LAYER[-5:]),
        # (distribution 2.8 answers this 416 with the blob's Content-Length and a short body)
        Step("GET", f"/v2/test/repo/blobs/{sha(LAYER)}", 416, headers={"Range": "bytes=5000-"}, ours_only=True),
        Step("GET", f"/v2/test/repo/blobs/{ZERO}", 404, want_code="BLOB_UNKNOWN"),
        Step("GET", f"/v2/other/repo/blobs/{sha(LAYER)}", 404, want_code="BLOB_UNKNOWN"),  # not linked there
        Step("HEAD", f"/v2/test/repo/blobs/{ZERO}", 404, want_body=b""),
        Step("GET", "/v2/test/repo/blobs/sha256:xyz", 400, want_code="DIGEST_INVALID", ours_only=True),
    ],
    # a docker manifest list asked for by tag by a client that does not take lists (distribution's
    # GetManifest): it is sent the linux/amd64 image instead, or MANIFEST_UNKNOWN when the list has none
    "manifest-list": setup_image() + [
        Step("PUT", f"/v2/test/repo/manifests/{sha(AMD64)}", 201, AMD64, {"Content-Type": DOCKER}),
        Step("PUT", f"/v2/test/repo/manifests/{sha(ARM64)}", 201, ARM64, {"Content-Type": DOCKER}),
        Step("PUT", "/v2/test/repo/manifests/multi", 201, LIST, {"Content-Type": DOCKER_LIST}),
        Step("PUT", "/v2/test/repo/manifests/armonly", 201, ARM_LIST, {"Content-Type": DOCKER_LIST}),
        Step("GET", "/v2/test/repo/manifests/multi", 200, headers={"Accept": DOCKER_LIST}, want_body=LIST,
             want_headers={"Content-Type": re.escape(DOCKER_LIST), "Docker-Content-Digest": sha(LIST)}),
        Step("GET", "/v2/test/repo/manifests/multi", 200, headers={"Accept": DOCKER}, want_body=AMD64,
             want_headers={"Content-Type": re.escape(DOCKER), "Docker-Content-Digest": sha(AMD64),
                           "Content-Length": str(len(AMD64))}),
        Step("HEAD", "/v2/test/repo/manifests/multi", 200, headers={"Accept": DOCKER}, want_body=b"",
             want_headers={"Docker-Content-Digest": sha(AMD64), "Content-Length": str(len(AMD64))}),
        # by digest the list is the list, whatever the client takes
        Step("GET", f"/v2/test/repo/manifests/{sha(LIST)}", 200, headers={"Accept": DOCKER}, want_body=LIST),
        Step("GET", "/v2/test/repo/manifests/armonly", 404, headers={"Accept": DOCKER}, want_code="MANIFEST_UNKNOWN"),
        # (distribution 2.8 rewrote the image to schema 1 here; 3.x refuses it)
        Step("GET", "/v2/test/repo/manifests/multi", 400, headers={"Accept": OCI}, want_code="MANIFEST_INVALID",
             ours_only=True),
    ],
    "push-monolithic": [
        Step("POST", "/v2/test/repo/blobs/uploads/", 202, want_headers={"Location": LOC(f"/v2/test/repo/blobs/uploads/{UUID_RE}"),
                                                                         "Range": "0-0"},
             capture={"loc": "Location"}),
        Step("PUT", "{loc}?digest=" + sha(LAYER), 201, LAYER,
             want_headers={"Location": LOC(f"/v2/test/repo/blobs/{sha(LAYER)}"), "Docker-Content-Digest": sha(LAYER)}),
        # the single-request upload is the spec's MAY (distribution 2.8 answers 202 and ignores the body)
        Step("POST", f"/v2/test/repo/blobs/uploads/?digest={sha(CONFIG)}", 201, CONFIG,
             want_headers={"Location": LOC(f"/v2/test/repo/blobs/{sha(CONFIG)}")}, ours_only=True),
        Step("POST", "/v2/test/repo/blobs/uploads/", 202, capture={"loc4": "Location"}),
        Step("PUT", "{loc4}?digest=" + sha(CONFIG), 201, CONFIG),
        Step("HEAD", f"/v2/test/repo/blobs/{sha(CONFIG)}", 200),
        Step("PUT", "/v2/test/repo/manifests/v1", 201, MANIFEST, {"Content-Type": OCI},
             want_headers={"Location": LOC(f"/v2/test/repo/manifests/{sha(MANIFEST)}"),
                           "Docker-Content-Digest": sha(MANIFEST)}),
        Step("PUT", f"/v2/test/repo/manifests/{sha(MANIFEST)}", 201, MANIFEST, {"Content-Type": OCI}),
        Step("GET", "/v2/test/repo/manifests/v1", 200, want_body=MANIFEST),
    ],
    "push-chunked": [
        Step("POST", "/v2/test/repo/blobs/uploads/", 202, capture={"loc": "Location"}),
        Step("PATCH", "{loc}", 202, CHUNK_A, {"Content-Type": "application/octet-stream",
                                              "Content-Range": f"0-{len(CHUNK_A) - 1}"},
             want_headers={"Range": f"0-{len(CHUNK_A) - 1}", "Location": LOC(f"/v2/test/repo/blobs/uploads/{UUID_RE}"),
                           "Docker-Upload-UUID": UUID_RE}, capture={"loc": "Location"}),
        Step("GET", "{loc}", 204, want_headers={"Range": f"0-{len(CHUNK_A) - 1}"}),
        # a chunk that does not start where the upload stands: the spec's MUST (distribution 2.8 appends it)
        Step("PATCH", "{loc}", 416, CHUNK_B, {"Content-Range": f"5-{5 + len(CHUNK_B) - 1}"}, ours_only=True),
        Step("PATCH", "{loc}", 202, CHUNK_B, {"Content-Range": f"{len(CHUNK_A)}-{len(LAYER) - 1}"},
             want_headers={"Range": f"0-{len(LAYER) - 1}"}, capture={"loc": "Location"}),
        Step("PUT", "{loc}?digest=" + sha(LAYER), 201, b"", want_headers={"Docker-Content-Digest": sha(LAYER)}),
        Step("GET", f"/v2/test/repo/blobs/{sha(LAYER)}", 200, want_body=LAYER),
        Step("GET", "{loc}", 404, want_code="BLOB_UPLOAD_UNKNOWN"),  # finished: gone
        # chunks without Content-Range (streamed), the last one in the closing PUT
        Step("POST", "/v2/test/repo/blobs/uploads/", 202, capture={"loc2": "Location"}),
        Step("PATCH", "{loc2}", 202, CONFIG[:10], want_headers={"Range": "0-9"}, capture={"loc2": "Location"}),
        Step("PUT", "{loc2}?digest=" + sha(CONFIG), 201, CONFIG[10:]),
        Step("GET", f"/v2/test/repo/blobs/{sha(CONFIG)}", 200, want_body=CONFIG),
        # cancel
        Step("POST", "/v2/test/repo/blobs/uploads/", 202, capture={"loc3": "Location"}),
        Step("DELETE", "{loc3}", 204),
        Step("GET", "{loc3}", 404, want_code="BLOB_UPLOAD_UNKNOWN"),
    ],
    "push-mount": setup_image() + [
        Step("POST", f"/v2/other/repo/blobs/uploads/?mount={sha(LAYER)}&from=test/repo", 201,
             want_headers={"Location": LOC(f"/v2/other/repo/blobs/{sha(LAYER)}"), "Docker-Content-Digest": sha(LAYER)}),
        Step("GET", f"/v2/other/repo/blobs/{sha(LAYER)}", 200, want_body=LAYER),
        # a blob the source does not hold: an upload session instead
        Step("POST", f"/v2/other/repo/blobs/uploads/?mount={ZERO}&from=test/repo", 202,
             want_headers={"Location": LOC(f"/v2/other/repo/blobs/uploads/{UUID_RE}")}),
    ],
    "management": setup_image() + [
        Step("PUT", "/v2/test/repo/manifests/v2", 201, MANIFEST, {"Content-Type": OCI}),
        Step("DELETE", "/v2/test/repo/manifests/v2", 202),  # a tag
        Step("GET", "/v2/test/repo/tags/list", 200, want_json={"name": "test/repo", "tags": ["v1"]}),
        Step("DELETE", f"/v2/test/repo/manifests/{sha(MANIFEST)}", 202),
        Step("GET", "/v2/test/repo/manifests/v1", 404, want_code="MANIFEST_UNKNOWN"),
        Step("GET", f"/v2/test/repo/manifests/{sha(MANIFEST)}", 404, want_code="MANIFEST_UNKNOWN"),
        Step("DELETE", f"/v2/test/repo/manifests/{sha(MANIFEST)}", 404, want_code="MANIFEST_UNKNOWN"),
        Step("DELETE", f"/v2/test/repo/blobs/{sha(LAYER)}", 202),
        Step("GET", f"/v2/test/repo/blobs/{sha(LAYER)}", 404, want_code="BLOB_UNKNOWN"),
        Step("DELETE", f"/v2/test/repo/blobs/{sha(LAYER)}", 404, want_code="BLOB_UNKNOWN"),
    ],
    "referrers": setup_image() + [
        Step("GET", f"/v2/test/repo/referrers/{sha(MANIFEST)}", 200,
             want_json={"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []},
             want_headers={"Content-Type": re.escape("application/vnd.oci.image.index.v1+json")}),
        Step("PUT", f"/v2/test/repo/manifests/{sha(ARTIFACT)}", 201, ARTIFACT, {"Content-Type": OCI},
             want_headers={"OCI-Subject": sha(MANIFEST)}),
        Step("GET", f"/v2/test/repo/referrers/{sha(MANIFEST)}", 200,
             want_json={"manifests": [{"mediaType": OCI, "digest": sha(ARTIFACT), "size": len(ARTIFACT),
                                       "artifactType": "application/x-sig"}]}),
        Step("GET", f"/v2/test/repo/referrers/{sha(MANIFEST)}?artifactType=application/x-sig", 200,
             want_headers={"OCI-Filters-Applied": "artifactType"}),
        Step("GET", f"/v2/test/repo/referrers/{sha(MANIFEST)}?artifactType=application/x-other", 200,
             want_json={"manifests": []}),
        Step("DELETE", f"/v2/test/repo/manifests/{sha(ARTIFACT)}", 202),
        Step("GET", f"/v2/test/repo/referrers/{sha(MANIFEST)}", 200, want_json={"manifests": []}),
    ],
    "bad-input": setup_image() + [
        Step("POST", f"/v2/test/repo/blobs/uploads/?digest={sha(b'other')}", 400, LAYER, want_code="DIGEST_INVALID"),
        Step("HEAD", f"/v2/test/repo/blobs/{sha(b'other')}", 404),
        Step("POST", "/v2/test/repo/blobs/uploads/", 202, capture={"loc": "Location"}),
        Step("PUT", "{loc}?digest=" + sha(b"other"), 400, LAYER, want_code="DIGEST_INVALID"),
        Step("GET", "{loc}", 404, want_code="BLOB_UPLOAD_UNKNOWN"),  # a refused upload leaves nothing
        Step("GET", "/v2/a/../b/manifests/latest", 400, want_code="NAME_INVALID"),
        Step("GET", "/v2/Upper/manifests/latest", 400, want_code="NAME_INVALID"),
        Step("PUT", "/v2/a/../b/manifests/latest", 400, MANIFEST, {"Content-Type": OCI}, want_code="NAME_INVALID"),
        Step("POST", "/v2/a/../b/blobs/uploads/", 400, want_code="NAME_INVALID"),
        Step("PUT", "/v2/test/repo/manifests/big", 413, b"{" + b" " * (4 << 20) + b"}", {"Content-Type": OCI},
             want_code="MANIFEST_INVALID"),
        Step("PUT", f"/v2/test/repo/manifests/{ZERO}", 400, MANIFEST, {"Content-Type": OCI}, want_code="DIGEST_INVALID"),
        Step("PUT", "/v2/test/repo/manifests/bad", 400, b"not json", {"Content-Type": OCI}, want_code="MANIFEST_INVALID"),
        Step("PUT", "/v2/test/repo/manifests/-bad-tag", 400, MANIFEST, {"Content-Type": OCI}, want_code="TAG_INVALID"),
        Step("PUT", "/v2/fresh/repo/manifests/v1", 400, MANIFEST, {"Content-Type": OCI},
             want_code="MANIFEST_BLOB_UNKNOWN"),  # its blobs are not in this repository
        Step("PATCH", "/v2/test/repo/blobs/uploads/6f0e4a1c-1b2a-4c3d-9e8f-0a1b2c3d4e5f", 404, b"x",
             want_code="BLOB_UPLOAD_UNKNOWN"),
        Step("PUT", f"/v2/test/repo/blobs/uploads/not-a-uuid?digest={sha(b'x')}", 404, b"x",
             want_code="BLOB_UPLOAD_UNKNOWN"),
        Step("GET", "/v2/test/repo/manifests/big", 404, want_code="MANIFEST_UNKNOWN"),
        Step("GET", "/v2/fresh/repo/tags/list", 404, want_code="NAME_UNKNOWN"),
        Step("GET", "/v2/test/repo/tags/list", 200, want_json={"name": "test/repo", "tags": ["v1"]}),
    ],
}


class Client(Protocol):
    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Answer: ...


def run_steps(reg: Client, steps: list[Step]) -> None:
    vars_: dict[str, str] = {}
    for i, s in enumerate(steps):
        path = s.path.format(**vars_)
        if path.count("?") > 1:  # a query added to a Location that already has one
            head, _, tail = path.partition("?")
            path = head + "?" + tail.replace("?", "&")
        a = reg.request(s.method, path, s.body, s.headers)
        where = f"step {i}: {s.method} {path} -> {a.status} {a.headers} {a.body[:300]!r}"
        assert a.status == s.status, where
        for k, pattern in s.want_headers.items():
            assert k.lower() in a.headers, f"{where}: no {k}"
            assert re.fullmatch(pattern, a.headers[k.lower()]), f"{where}: {k}={a.headers[k.lower()]!r} !~ {pattern}"
        if s.want_body is not None:
            assert a.body == s.want_body, where
        if s.want_json is not None:
            got = a.json()
            if isinstance(s.want_json, dict) and s.want_json:
                for k, v in s.want_json.items():
                    assert got.get(k) == v, f"{where}: {k}"
            else:
                assert got == s.want_json, where
        if s.want_code is not None:
            assert a.headers.get("content-type", "").split(";")[0] == "application/json", where
            err = a.json()["errors"][0]
            assert err["code"] == s.want_code and err["message"], where
        for var, header in s.capture.items():
            vars_[var] = re.sub(r"^https?://[^/]+", "", a.headers[header.lower()])


@pytest.mark.parametrize("workflow", sorted(WORKFLOWS))
def test_workflow(registry: RegistryProcess, workflow: str) -> None:
    run_steps(registry, WORKFLOWS[workflow])
    if workflow == "bad-input":
        # nothing of the refused requests was stored: only the three blobs and the manifest of the setup
        blobs = sorted(os.listdir(os.path.join(registry.root, "blobs", "sha256")))
        assert blobs == sorted(d[7:] for d in (sha(CONFIG), sha(LAYER), sha(MANIFEST)))
        assert os.listdir(os.path.join(registry.root, "uploads")) == []
        assert not os.path.exists(os.path.join(registry.root, "repositories", "fresh"))


def test_tags_and_catalog_pagination(registry: RegistryProcess) -> None:
    run_steps(registry, setup_image())
    for t in ("c", "a", "b", "d"):
        run_steps(registry, [Step("PUT", f"/v2/test/repo/manifests/{t}", 201, MANIFEST, {"Content-Type": OCI})])
    for repo in ("zeta/x", "alpha"):
        registry.push_image(repo, "t")
    a = registry.request("GET", "/v2/test/repo/tags/list")
    assert a.json() == {"name": "test/repo", "tags": ["a", "b", "c", "d", "v1"]}
    a = registry.request("GET", "/v2/test/repo/tags/list?n=2")
    assert a.json()["tags"] == ["a", "b"]
    assert a.headers["link"] == '</v2/test/repo/tags/list?last=b&n=2>; rel="next"'
    a = registry.request("GET", "/v2/test/repo/tags/list?n=2&last=b")
    assert a.json()["tags"] == ["c", "d"]
    a = registry.request("GET", "/v2/test/repo/tags/list?n=2&last=d")
    assert a.json()["tags"] == ["v1"] and "link" not in a.headers
    assert registry.request("GET", "/v2/test/repo/tags/list?n=0").json()["tags"] == []
    a = registry.request("GET", "/v2/_catalog")
    assert a.json() == {"repositories": ["alpha", "test/repo", "zeta/x"]}
    a = registry.request("GET", "/v2/_catalog?n=1")
    assert a.json() == {"repositories": ["alpha"]}
    assert a.headers["link"] == '</v2/_catalog?last=alpha&n=1>; rel="next"'
    assert registry.request("GET", "/v2/_catalog?n=5&last=alpha").json() == {"repositories": ["test/repo", "zeta/x"]}


def test_index_needs_its_manifests(registry: RegistryProcess) -> None:
    d = registry.push_image("multi/arch", "amd64")
    size = len(registry.request("GET", f"/v2/multi/arch/manifests/{d}").body)
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": OCI, "digest": d, "size": size, "platform": {"os": "linux", "architecture": "amd64"}}]}
    _, a = registry.push_manifest("multi/arch", "latest", index, "application/vnd.oci.image.index.v1+json")
    assert a.status == 201
    a = registry.request("GET", "/v2/multi/arch/manifests/latest")
    assert a.headers["content-type"] == "application/vnd.oci.image.index.v1+json"
    index["manifests"][0]["digest"] = ZERO
    _, a = registry.push_manifest("multi/arch", "broken", index, "application/vnd.oci.image.index.v1+json")
    assert a.status == 404 and a.code() == "MANIFEST_UNKNOWN"


def test_deletes_disabled_by_default(registry_factory: Any) -> None:
    reg = registry_factory()
    d = reg.push_image("x/y", "v1")
    a = reg.request("DELETE", f"/v2/x/y/manifests/{d}")
    assert a.status == 405 and a.code() == "UNSUPPORTED"
    assert reg.request("GET", f"/v2/x/y/manifests/{d}").status == 200


class _Distribution:
    """Debian's distribution registry behind the same request interface, with the Accept header clients send."""

    ACCEPT = ", ".join([OCI, "application/vnd.oci.image.index.v1+json",
                        "application/vnd.docker.distribution.manifest.v2+json"])

    def __init__(self, reg: Any) -> None:
        self.reg = reg

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Answer:
        import http.client

        c = http.client.HTTPConnection(self.reg.host.split(":")[0], int(self.reg.host.split(":")[1]), timeout=60)
        try:
            c.request(method, path, body=body, headers={"Accept": self.ACCEPT, **(headers or {})})
            r = c.getresponse()
            return Answer(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        finally:
            c.close()


@pytest.mark.skipif(not os.path.exists("/usr/bin/docker-registry"), reason="Debian's docker-registry not installed")
@pytest.mark.parametrize("workflow", ["pull", "manifest-list", "push-monolithic", "push-chunked", "push-mount"])
def test_the_table_holds_for_distribution(workflow: str, tmp_path: Any) -> None:
    """The same steps against the reference implementation: the table describes the protocol, not our server."""
    from helpers.registry import running_registry

    with running_registry(str(tmp_path), "http") as reg:
        run_steps(_Distribution(reg), [s for s in WORKFLOWS[workflow] if not s.ours_only])
