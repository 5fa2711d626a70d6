#!/usr/bin/env python3
"""Write src/dockyard/api/data/body_schemas.json: the JSON types of every request body in the Engine API's
swagger document, in the small form api/bodycheck.py walks.

    scripts/gen_body_schemas.py [SWAGGER.yaml] [OUT.json]

Each node is {"t": type or [types], "n": name for messages, "p": {property: node}, "a": node (map values),
"i": node (array items)} or {"$": definition name}; "t" is omitted where the spec allows any type. The
definitions reached from a body are kept by name in "defs" (they refer to each other, also recursively).
Where moby's own decoder accepts more than the spec says (a string for the StrSlice fields Cmd, Entrypoint and
Shell), the table says so too.
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SPEC = "/work/shared/specs/docker-engine-api-v1.47.yaml"
DEFAULT_OUT = os.path.join(HERE, "..", "src", "dockyard", "api", "data", "body_schemas.json")
STRSLICE = {"Cmd", "Entrypoint", "Shell"}  # moby's strslice.StrSlice: a string or an array of strings


def build(spec: dict[str, Any]) -> dict[str, Any]:
    defs_in: dict[str, Any] = spec.get("definitions", {})
    defs_out: dict[str, Any] = {}

    def node(schema: dict[str, Any], name: str) -> dict[str, Any]:
        if "$ref" in schema:
            ref = schema["$ref"].rsplit("/", 1)[-1]
            if ref not in defs_out:
                defs_out[ref] = {}  # placeholder: breaks recursion
                defs_out[ref] = node(defs_in[ref], ref)
            return {"$": ref}
        props: dict[str, Any] = {}
        types: set[str] = set()
        for part in schema.get("allOf", []):
            sub = part
            while "$ref" in sub:
                sub = defs_in[sub["$ref"].rsplit("/", 1)[-1]]
            merged = node(sub, name)
            while "$" in merged:
                merged = defs_out[merged["$"]]
            props.update(merged.get("p", {}))
            if isinstance(merged.get("t"), str):
                types.add(merged["t"])
        out: dict[str, Any] = {"n": schema.get("title") or name}
        t = schema.get("type")
        if t:
            types.add(t)
        if len(types) == 1:
            out["t"] = types.pop()
        for key, sub in (schema.get("properties") or {}).items():
            props[key] = node(sub, key)
            if key in STRSLICE and props[key].get("t") == "array":
                props[key]["t"] = ["array", "string"]
        if props:
            out["p"] = props
            out.setdefault("t", "object")
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            out["a"] = node(extra, name)
        if isinstance(schema.get("items"), dict):
            out["i"] = node(schema["items"], name)
        return out

    bodies: dict[str, Any] = {}
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if not isinstance(op, dict):
                continue
            for prm in op.get("parameters", []):
                if prm.get("in") != "body":
                    continue
                schema = prm.get("schema") or {}
                if schema.get("type") == "string":
                    continue  # a stream (tar, binary), never JSON
                title = (schema.get("title") or schema.get("$ref", "").rsplit("/", 1)[-1]
                         or op.get("operationId", "") + "Request")
                pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"
                bodies[f"{method.upper()} {pattern}"] = node(schema, title)
    return {"bodies": bodies, "defs": dict(sorted(defs_out.items()))}


def main(argv: list[str]) -> int:
    spec_path = argv[1] if len(argv) > 1 else DEFAULT_SPEC
    out_path = argv[2] if len(argv) > 2 else DEFAULT_OUT
    with open(spec_path) as f:
        spec = yaml.safe_load(f)
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path + ".tmp", "w") as f:
        json.dump(build(spec), f, separators=(",", ":"), sort_keys=True)
        f.write("\n")
    os.replace(out_path + ".tmp", out_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
