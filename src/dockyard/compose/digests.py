"""``config --resolve-image-digests``: each service's image pinned to the digest its registry serves now.

As Compose v2 (compose-go's WithImagesResolved with compose's ImageDigestResolver): the image reference is
normalised as ParseDockerRef does (``busybox`` → ``docker.io/library/busybox:latest``; a reference with a
digest keeps it and loses its tag), the daemon is asked for the tag's distribution descriptor
(``GET /distribution/{ref}/json``, which asks the registry), and the image becomes ``ref@digest``; a service
already pinned is not asked about. A failure is ``failed to resolve digest for REF: …``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dockyard.client.api_client import APIError
from dockyard.compose.errors import ComposeError


def docker_ref(image: str) -> str:
    """compose-go's ``reference.ParseDockerRef(image).String()``."""
    name, at, digest = image.partition("@")
    first, slash, _rest = name.partition("/")
    if not slash or ("." not in first and ":" not in first and first != "localhost"):
        name = "docker.io/" + (name if slash else "library/" + name)
    elif first == "index.docker.io":
        name = "docker.io/" + name[len(first) + 1:]
    if name.startswith("docker.io/") and name.count("/") == 1:
        name = "docker.io/library/" + name[len("docker.io/"):]
    last = name.rsplit("/", 1)[-1]
    if at:
        if ":" in last:  # digested and tagged: the tag goes
            name = name[:len(name) - len(last)] + last.split(":", 1)[0]
        return f"{name}@{digest}"
    if ":" not in last:
        name += ":latest"
    return name


def resolve_digests(services: dict[str, dict[str, Any]], inspect: Callable[[str], dict[str, Any]]) -> None:
    """Pin every service's image in place (``inspect``: the daemon's distribution inspect of a reference)."""
    for svc in services.values():
        image = svc.get("image")
        if not image:
            continue
        ref = docker_ref(str(image))
        if "@" not in ref:
            try:
                digest = str(inspect(ref)["Descriptor"]["digest"])
            except APIError as e:
                raise ComposeError(f"failed to resolve digest for {ref}: Error response from daemon: "
                                   f"{e.message}") from None
            ref = f"{ref}@{digest}"
        svc["image"] = ref
