"""The composition root and the container directory: wiring by constructor, route import failures are fatal."""

from __future__ import annotations

import importlib
import inspect
import os
from typing import Any

import pytest

from dockyard.api.context import Services
from dockyard.containers.directory import ContainerDirectory
from dockyard.containers.service import ContainerService
from dockyard.containers.state import Container
from dockyard.containers.store import ContainerStore
from dockyard.daemon import main as daemon_main
from dockyard.errors import InvalidParameter, NotFound
from dockyard.storage.db import StateDB


def test_a_route_module_that_fails_to_import_stops_the_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.import_module

    def broken(name: str, package: str | None = None) -> Any:
        if name == "dockyard.api.routes.volumes":
            raise SyntaxError("invalid syntax (volumes.py, line 1)")
        return real(name, package)

    monkeypatch.setattr(daemon_main.importlib, "import_module", broken)
    services = Services(config=None, db=None, events=None, images=None, containers=None,  # type: ignore[arg-type]
                        execs=None, networks=None, volumes=None, builds=None,
                        distribution=None)
    with pytest.raises(SyntaxError, match="volumes.py"):
        daemon_main.build_router(services)


def test_every_collaborator_of_the_container_service_is_required() -> None:
    params = inspect.signature(ContainerService.__init__).parameters
    for name in ("cfg", "directory", "events", "images", "snapshots", "networks", "volumes", "execs"):
        assert params[name].default is inspect.Parameter.empty, name
        assert params[name].annotation not in ("Any", inspect.Parameter.empty), name


def _record(cid: str, name: str, image_id: str = "sha256:" + "a" * 64, **kw: Any) -> Container:
    return Container(id=cid, name=name, created="2026-01-01T00:00:00Z", image_id=image_id, image="busybox",
                     config=kw.pop("config", {}), host_config=kw.pop("host_config", {}), **kw)


def test_directory_answers_what_images_volumes_and_networks_ask(tmp_path: Any) -> None:
    db = StateDB(os.path.join(str(tmp_path), "state.db"))
    store = ContainerStore(db)
    a = _record("a" * 64, "web", host_config={"Binds": ["data:/data"]})
    b = _record("ab" + "c" * 62, "db", image_id="sha256:" + "b" * 64)
    b.state.Running = True
    for c in (a, b):
        store.insert(c)
    d = ContainerDirectory(store)
    assert d.get("web") is d.get("/web") is d.get("a" * 64)
    with pytest.raises(InvalidParameter, match="multiple IDs found with provided prefix: a"):
        d.get("a")
    with pytest.raises(NotFound, match="No such container: nope"):
        d.get("nope")
    assert d.identify("db") == (b.id, "db")
    assert d.live_ids() == {b.id}
    assert d.image_users("sha256:" + "b" * 64) == [(b.id, True)]
    assert d.volume_users("data") == [a.id] and d.volume_users("other") == []
    d.settings_changed(a.id, {"Networks": {"bridge": {}}})
    assert ContainerDirectory(store).get(a.id).network_settings == {"Networks": {"bridge": {}}}  # saved
    d.settings_changed("gone", {"Networks": {}})  # a container removed meanwhile: ignored
    d.discard(a.id)
    found = d.find(b.id)
    assert not d.contains(a.id) and found is not None and found.name == "db" and d.find(a.id) is None
    db.close()
