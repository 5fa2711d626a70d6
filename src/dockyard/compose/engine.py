"""The Engine API calls compose makes, on top of any client with the generic request methods.

compose talks to a daemon only as a client: whatever speaks the Docker Engine API (dockyard, dockerd)
through ``dockyard.client``. The interface compose needs is declared here, by its consumer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from dockyard.client.api_client import Conflict, HijackedSocket, NotFound, PendingResponse, Response
from dockyard.compose import labels as L


class EngineClient(Protocol):
    """The generic calls of ``dockyard.client.APIClient`` compose builds on."""

    host: str

    def get(self, path: str, query: dict[str, Any] | None = None) -> Any: ...

    def post(self, path: str, query: dict[str, Any] | None = None, body: Any = None) -> Any: ...

    def put(self, path: str, query: dict[str, Any] | None = None, body: Any = None) -> Any: ...

    def delete(self, path: str, query: dict[str, Any] | None = None) -> Any: ...

    def request(self, method: str, path: str, query: dict[str, Any] | None = None, body: Any = None,
                headers: dict[str, str] | None = None) -> Response: ...

    def stream_json(self, method: str, path: str, query: dict[str, Any] | None = None,
                    body: Any = None) -> Iterator[Any]: ...

    def hijack(self, method: str, path: str, query: dict[str, Any] | None = None,
               body: Any = None) -> HijackedSocket: ...

    def begin(self, method: str, path: str, query: dict[str, Any] | None = None,
              body: Any = None) -> PendingResponse: ...

    def ping(self) -> dict[str, str]: ...


class Engine:
    """Named operations on containers, networks, volumes and images (404 → None where asked)."""

    def __init__(self, client: EngineClient) -> None:
        self.client = client

    # -- containers ---------------------------------------------------------------------------------
    def containers(self, project: str, service: str | None = None, all_: bool = True,
                   oneoff: bool | None = False) -> list[dict[str, Any]]:
        items = self.client.get("/containers/json", {"all": all_, "filters": L.project_filter(project, service,
                                                                                                   oneoff)})
        return sorted(items or [], key=lambda c: (c["Labels"].get(L.SERVICE, ""),
                                                  int(c["Labels"].get(L.NUMBER, "0") or 0), c["Names"][0]))

    def inspect(self, ref: str) -> dict[str, Any] | None:
        try:
            return self.client.get(f"/containers/{ref}/json")  # type: ignore[no-any-return]
        except NotFound:
            return None

    def create(self, name: str, body: dict[str, Any], platform: str | None = None) -> str:
        query: dict[str, Any] = {"name": name}
        if platform:
            query["platform"] = platform
        return str(self.client.post("/containers/create", query, body)["Id"])

    def start(self, cid: str) -> None:
        self.client.request("POST", f"/containers/{cid}/start").data  # noqa: B018

    def stop(self, cid: str, timeout: int | None = None) -> None:
        self.client.request("POST", f"/containers/{cid}/stop", {"t": timeout}).data  # noqa: B018

    def restart(self, cid: str, timeout: int | None = None) -> None:
        self.client.request("POST", f"/containers/{cid}/restart", {"t": timeout}).data  # noqa: B018

    def kill(self, cid: str, signal: str | None = None) -> None:
        self.client.request("POST", f"/containers/{cid}/kill", {"signal": signal}).data  # noqa: B018

    def pause(self, cid: str) -> None:
        self.client.request("POST", f"/containers/{cid}/pause").data  # noqa: B018

    def unpause(self, cid: str) -> None:
        self.client.request("POST", f"/containers/{cid}/unpause").data  # noqa: B018

    def remove(self, cid: str, force: bool = False, volumes: bool = False) -> None:
        try:
            self.client.request("DELETE", f"/containers/{cid}", {"force": force, "v": volumes}).data  # noqa: B018
        except NotFound:
            pass

    def wait(self, cid: str, condition: str = "not-running") -> int:
        res = self.client.post(f"/containers/{cid}/wait", {"condition": condition})
        return int((res or {}).get("StatusCode", 0))

    def logs(self, cid: str, follow: bool = False, tail: str | None = None, timestamps: bool = False,
             since: str | None = None, until: str | None = None) -> Response:
        return self.client.request("GET", f"/containers/{cid}/logs",
                                   {"stdout": True, "stderr": True, "follow": follow, "tail": tail,
                                    "timestamps": timestamps, "since": since, "until": until})

    def exec_wait(self, cid: str, cmd: list[str]) -> int:
        """Run ``cmd`` in the container without streams, until it ends; its exit code."""
        eid = self.client.post(f"/containers/{cid}/exec", None, {"Cmd": cmd, "AttachStdout": False,
                                                                  "AttachStderr": False})["Id"]
        self.client.request("POST", f"/exec/{eid}/start", None, {"Detach": False, "Tty": False}).data  # noqa: B018
        return int(self.client.get(f"/exec/{eid}/json").get("ExitCode") or 0)

    def put_archive(self, cid: str, path: str, tar: bytes) -> None:
        _ = self.client.request("PUT", f"/containers/{cid}/archive", {"path": path}, tar,
                                {"Content-Type": "application/x-tar"}).data

    # -- networks and volumes -----------------------------------------------------------------------
    def network(self, name: str) -> dict[str, Any] | None:
        try:
            return self.client.get(f"/networks/{name}")  # type: ignore[no-any-return]
        except NotFound:
            return None

    def networks(self, project: str) -> list[dict[str, Any]]:
        return list(self.client.get("/networks", {"filters": {"label": [f"{L.PROJECT}={project}"]}}) or [])

    def create_network(self, body: dict[str, Any]) -> str:
        return str(self.client.post("/networks/create", None, body)["Id"])

    def remove_network(self, name: str) -> None:
        try:
            self.client.request("DELETE", f"/networks/{name}").data  # noqa: B018
        except NotFound:
            pass

    def volume(self, name: str) -> dict[str, Any] | None:
        try:
            return self.client.get(f"/volumes/{name}")  # type: ignore[no-any-return]
        except NotFound:
            return None

    def volumes(self, project: str) -> list[dict[str, Any]]:
        res = self.client.get("/volumes", {"filters": {"label": [f"{L.PROJECT}={project}"]}}) or {}
        return list(res.get("Volumes") or [])

    def create_volume(self, body: dict[str, Any]) -> None:
        self.client.post("/volumes/create", None, body)

    def remove_volume(self, name: str) -> None:
        try:
            self.client.request("DELETE", f"/volumes/{name}").data  # noqa: B018
        except NotFound:
            pass

    # -- images -------------------------------------------------------------------------------------
    def image(self, ref: str) -> dict[str, Any] | None:
        try:
            return self.client.get(f"/images/{ref}/json")  # type: ignore[no-any-return]
        except NotFound:
            return None

    def remove_image(self, ref: str) -> bool:
        try:
            self.client.request("DELETE", f"/images/{ref}").data  # noqa: B018
            return True
        except (NotFound, Conflict):
            return False

    def pull(self, ref: str, platform: str | None = None) -> Iterator[Any]:
        name, tag = split_ref(ref)
        return self.client.stream_json("POST", "/images/create", {"fromImage": name, "tag": tag,
                                                                  "platform": platform})

    def push(self, ref: str) -> Iterator[Any]:
        name, tag = split_ref(ref)
        return self.client.stream_json("POST", f"/images/{name}/push", {"tag": tag})

    def build(self, context_tar: Any, query: dict[str, Any], headers: dict[str, str] | None = None) -> Iterator[Any]:
        resp = self.client.request("POST", "/build", query, context_tar,
                                   {"Content-Type": "application/x-tar", **(headers or {})})
        return resp.iter_json()

    def events(self, filters: dict[str, list[str]], since: str | None = None) -> Iterator[Any]:
        return self.client.stream_json("GET", "/events", {"filters": filters, "since": since})

    def container_events(self, cid: str, actions: list[str], since: float | None = None) -> Response:
        """The container's events of these actions as they happen (from ``since``, a Unix time); the
        caller reads ``iter_json()`` and closes the response."""
        return self.client.request("GET", "/events", {
            "filters": {"container": [cid], "event": actions, "type": ["container"]},
            "since": f"{since:.9f}" if since is not None else None})

    def project_names(self) -> dict[str, list[dict[str, Any]]]:
        """Every project the daemon has containers of → its containers."""
        out: dict[str, list[dict[str, Any]]] = {}
        for c in self.client.get("/containers/json", {"all": True, "filters": {"label": [L.PROJECT]}}) or []:
            out.setdefault(c["Labels"][L.PROJECT], []).append(c)
        return out


def split_ref(ref: str) -> tuple[str, str]:
    """``name[:tag][@digest]`` → (name, tag or digest; "latest" when neither)."""
    if "@" in ref:
        name, digest = ref.split("@", 1)
        return name, digest
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1:]
    return ref, "latest"
