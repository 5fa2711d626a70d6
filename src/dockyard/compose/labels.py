"""Compose v2's names and labels, so that Compose v2 and dockyard compose see the same project.

Containers are ``project-service-N`` (one-off ones ``project-service-run-<id>``), networks and volumes
``project_key``; every object carries the ``com.docker.compose.*`` labels v2 writes, and a container's
config hash is v2's: the sha256 of the service's Go JSON without build, pull_policy, scale/replicas and
depends_on (changing those alone recreates nothing), see compose/servicehash.py.
"""

from __future__ import annotations

from typing import Any

PREFIX = "com.docker.compose"
PROJECT = f"{PREFIX}.project"
SERVICE = f"{PREFIX}.service"
NUMBER = f"{PREFIX}.container-number"
ONEOFF = f"{PREFIX}.oneoff"
WORKING_DIR = f"{PREFIX}.project.working_dir"
CONFIG_FILES = f"{PREFIX}.project.config_files"
ENV_FILE = f"{PREFIX}.project.environment_file"
CONFIG_HASH = f"{PREFIX}.config-hash"
DEPENDS_ON = f"{PREFIX}.depends_on"
IMAGE = f"{PREFIX}.image"
VERSION = f"{PREFIX}.version"
NETWORK = f"{PREFIX}.network"
VOLUME = f"{PREFIX}.volume"
REPLACE = f"{PREFIX}.replace"

# the Compose v2 release whose behaviour this follows (written in com.docker.compose.version)
COMPOSE_VERSION = "2.29.7"


def container_name(project: str, service: str, number: int) -> str:
    return f"{project}-{service}-{number}"


def default_image_name(project: str, service: str) -> str:
    """The image a build without ``image:`` is tagged as (v2: ``project-service``)."""
    return f"{project}-{service}"


def sha256_hex(data: bytes) -> str:
    """sha256 by the interpreter's built-in module (hashlib's OpenSSL costs milliseconds to load)."""
    try:
        from _sha256 import sha256
    except ImportError:  # interpreters that only ship hashlib's
        from hashlib import sha256
    return sha256(data).hexdigest()


def config_hash(service: dict[str, Any]) -> str:
    """Compose v2's ServiceHash of the service (compose/servicehash.py)."""
    from dockyard.compose.servicehash import service_hash

    return service_hash(service)


def depends_on_label(service: dict[str, Any]) -> str:
    """``db:service_healthy:false,cache:service_started:false`` (name:condition:restart), as v2 writes it."""
    parts = []
    for name, spec in sorted((service.get("depends_on") or {}).items()):
        spec = spec or {}
        restart = "true" if spec.get("restart") else "false"
        parts.append(f"{name}:{spec.get('condition', 'service_started')}:{restart}")
    return ",".join(parts)


def project_filter(project: str, service: str | None = None, oneoff: bool | None = False) -> dict[str, list[str]]:
    """The label filter of a project's containers (``oneoff=None``: both kinds)."""
    labels = [f"{PROJECT}={project}"]
    if service:
        labels.append(f"{SERVICE}={service}")
    if oneoff is not None:
        labels.append(f"{ONEOFF}={'True' if oneoff else 'False'}")
    return {"label": labels}
