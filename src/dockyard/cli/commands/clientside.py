"""`trust` and `manifest`: docker CLI features that never reach the daemon (the docker CLI signs through a
notary server and builds manifest lists against the registry itself). They are outside this engine's scope
ledger: the words exist, ``--help`` works, and each subcommand says plainly that dockyard does not provide
it (exit 1) instead of failing as an unknown command."""

from __future__ import annotations

import argparse

from dockyard.cli.app import CLIContext, CLIError

WHAT = {
    "trust": "Docker Content Trust (signing through a notary server)",
    "manifest": "manifest lists built and pushed by the client against a registry",
}
USAGE = {
    "trust inspect": "dockyard trust inspect IMAGE[:TAG] [IMAGE[:TAG]...]",
    "trust revoke": "dockyard trust revoke [OPTIONS] IMAGE[:TAG]",
    "trust sign": "dockyard trust sign IMAGE:TAG",
    "trust key": "dockyard trust key COMMAND",
    "trust signer": "dockyard trust signer COMMAND",
    "manifest annotate": "dockyard manifest annotate [OPTIONS] MANIFEST_LIST MANIFEST",
    "manifest create": "dockyard manifest create MANIFEST_LIST MANIFEST [MANIFEST...]",
    "manifest inspect": "dockyard manifest inspect [OPTIONS] [MANIFEST_LIST] MANIFEST",
    "manifest push": "dockyard manifest push [OPTIONS] MANIFEST_LIST",
    "manifest rm": "dockyard manifest rm MANIFEST_LIST [MANIFEST_LIST...]",
}


def _configure_for(name: str):  # type: ignore[no-untyped-def]
    def configure(p: argparse.ArgumentParser) -> None:
        p.usage = USAGE[name]
        p.add_argument("rest", nargs=argparse.REMAINDER)

    return configure


def _run_for(name: str):  # type: ignore[no-untyped-def]
    group = name.split(" ", 1)[0]

    def run(ns: argparse.Namespace, ctx: CLIContext) -> int:
        raise CLIError(f"dockyard {name}: this needs {WHAT[group]}, which dockyard does not provide; use the docker "
                       f"CLI for it", 1)

    return run


for _name in USAGE:
    _key = _name.replace(" ", "_")
    globals()[f"configure_{_key}"] = _configure_for(_name)
    globals()[f"run_{_key}"] = _run_for(_name)
