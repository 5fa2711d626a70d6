"""The instructions that change only the image config (ENV, LABEL, CMD, ENTRYPOINT, EXPOSE, VOLUME, USER,
STOPSIGNAL, SHELL, ONBUILD, HEALTHCHECK, ARG, MAINTAINER) and WORKDIR, each committed as docker's classic builder
does: an ``empty_layer`` history entry (WORKDIR: a layer with the new directory) on the parent's layers."""

from __future__ import annotations

import copy
import posixpath
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .cache import cache_key
from .dockerfile import Node, parse_exec_form
from .history_text import go_duration, go_quote_list, parse_duration
from .imageconfig import empty_container_config
from .imagefs import ImageFS
from .instructions import flag_map, name_value_pairs, split_words_raw
from .layertar import LayerBuilder
from .options import BuildError

if TYPE_CHECKING:
    from .executor import StageBuilder
    from .stage_state import State

Step = Callable[["StageBuilder", "State", Node], None]


def _nothing(cc: dict[str, Any]) -> None:
    pass


def do_env(b: StageBuilder, st: State, node: Node) -> None:
    pairs = [(b.word(k, st, node.line), b.word(v, st, node.line)) for k, v in name_value_pairs(node, b.escape)]

    def mutate(cc: dict[str, Any]) -> None:
        env = list(cc.get("Env") or [])
        for k, v in pairs:
            env = [e for e in env if e.partition("=")[0] != k] + [f"{k}={v}"]
        cc["Env"] = env

    b.commit_meta(st, "ENV " + " ".join(f"{k}={v}" for k, v in pairs), mutate)


def do_label(b: StageBuilder, st: State, node: Node) -> None:
    pairs = [(b.word(k, st, node.line), b.word(v, st, node.line)) for k, v in name_value_pairs(node, b.escape)]

    def mutate(cc: dict[str, Any]) -> None:
        labels = dict(cc.get("Labels") or {})
        labels.update(dict(pairs))
        cc["Labels"] = labels

    b.commit_meta(st, "LABEL " + " ".join(f"{k}={v}" for k, v in pairs), mutate)


def do_maintainer(b: StageBuilder, st: State, node: Node) -> None:
    who = node.args.strip()
    st.config["author"] = who
    b.commit_meta(st, f"MAINTAINER {who}", _nothing)


def _cmd_value(st: State, node: Node) -> list[str]:
    if node.exec_form is not None:
        return list(node.exec_form)
    return [*st.shell, node.args]


def do_cmd(b: StageBuilder, st: State, node: Node) -> None:
    cmd = _cmd_value(st, node)

    def mutate(cc: dict[str, Any]) -> None:
        cc["Cmd"] = cmd

    b.commit_meta(st, f"CMD {go_quote_list(cmd)}", mutate)
    st.cmd_set = True


def do_entrypoint(b: StageBuilder, st: State, node: Node) -> None:
    if node.exec_form is not None:
        ep: list[str] | None = list(node.exec_form)
    elif node.args.strip():
        ep = [*st.shell, node.args]
    else:
        ep = None
    cmd_set = st.cmd_set

    def mutate(cc: dict[str, Any]) -> None:
        cc["Entrypoint"] = ep
        if not cmd_set:
            cc["Cmd"] = None

    b.commit_meta(st, f"ENTRYPOINT {go_quote_list(ep or [])}", mutate)


def do_expose(b: StageBuilder, st: State, node: Node) -> None:
    ports = b.words(node.args, st, node.line)
    specs: list[str] = []
    for p in ports:
        num, _, proto = p.partition("/")
        proto = (proto or "tcp").lower()
        if proto not in ("tcp", "udp", "sctp"):
            raise BuildError(f"invalid proto: {proto}")
        lo, _, hi = num.partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            raise BuildError(f"invalid containerPort: {num}")
        for n in range(int(lo), int(hi or lo) + 1):
            specs.append(f"{n}/{proto}")

    def mutate(cc: dict[str, Any]) -> None:
        exposed = dict(cc.get("ExposedPorts") or {})
        for s in specs:
            exposed[s] = {}
        cc["ExposedPorts"] = exposed

    b.commit_meta(st, "EXPOSE " + " ".join(sorted(ports)), mutate)


def do_volume(b: StageBuilder, st: State, node: Node) -> None:
    if node.exec_form is not None:
        vols = [b.word(v, st, node.line) for v in node.exec_form]
    else:
        vols = b.words(node.args, st, node.line)
    if any(not v.strip() for v in vols):
        raise BuildError("VOLUME specified can not be an empty string")

    def mutate(cc: dict[str, Any]) -> None:
        v = dict(cc.get("Volumes") or {})
        for x in vols:
            v[x] = {}
        cc["Volumes"] = v

    b.commit_meta(st, f"VOLUME [{' '.join(vols)}]", mutate)


def do_user(b: StageBuilder, st: State, node: Node) -> None:
    user = b.word(node.args, st, node.line)

    def mutate(cc: dict[str, Any]) -> None:
        cc["User"] = user

    b.commit_meta(st, f"USER {user}", mutate)


def do_stopsignal(b: StageBuilder, st: State, node: Node) -> None:
    sig = b.word(node.args, st, node.line)
    from ..containers.signals import parse_signal

    try:
        parse_signal(sig)
    except Exception:  # noqa: BLE001 - reported with docker's wording
        raise BuildError(f"Invalid signal: {sig}") from None

    def mutate(cc: dict[str, Any]) -> None:
        cc["StopSignal"] = sig

    b.commit_meta(st, f"STOPSIGNAL {sig}", mutate)


def do_shell(b: StageBuilder, st: State, node: Node) -> None:
    shell = list(node.exec_form or [])

    def mutate(cc: dict[str, Any]) -> None:
        cc["Shell"] = shell

    st.shell = shell  # docker's history line for SHELL already uses the new shell
    b.commit_meta(st, f"SHELL [{' '.join(shell)}]", mutate)


def do_onbuild(b: StageBuilder, st: State, node: Node) -> None:
    trigger = node.args.strip()
    word, _, rest = trigger.partition(" ")
    trigger = word.upper() + (" " + rest.strip() if rest.strip() else "")

    def mutate(cc: dict[str, Any]) -> None:
        cc["OnBuild"] = list(cc.get("OnBuild") or []) + [trigger]

    b.commit_meta(st, f"ONBUILD {trigger}", mutate)


def do_healthcheck(b: StageBuilder, st: State, node: Node) -> None:
    words = split_words_raw(node.args, b.escape)
    flags = flag_map(node)
    if words[0].upper() == "NONE":
        hc: dict[str, Any] = {"Test": ["NONE"]}
    else:
        rest = node.args.strip()[len(words[0]):].strip()
        form = parse_exec_form(rest)
        test = ["CMD", *form] if form is not None else ["CMD-SHELL", rest]
        hc = {"Test": test}
        for flag, key in (("interval", "Interval"), ("timeout", "Timeout"), ("start-period", "StartPeriod"),
                          ("start-interval", "StartInterval")):
            if flag in flags:
                d = parse_duration(flags[flag][-1], node.line, flag)
                if d != 0 and d < 10**6:
                    raise BuildError(f"Interval \"{flag}\" cannot be less than 1ms")
                if d:
                    hc[key] = d
        if "retries" in flags:
            try:
                r = int(flags["retries"][-1])
            except ValueError:
                raise BuildError(f"strconv.ParseInt: parsing \"{flags['retries'][-1]}\": invalid syntax") \
                    from None
            if r < 0:
                raise BuildError("--retries cannot be negative")
            if r:
                hc["Retries"] = r
    summary = "HEALTHCHECK &{" + go_quote_list(hc["Test"]) + " " + " ".join(
        f'"{go_duration(hc.get(k, 0))}"' for k in ("Interval", "Timeout", "StartPeriod")) \
        + f" '\\x{hc.get('Retries', 0):02x}'" + "}"

    def mutate(cc: dict[str, Any]) -> None:
        cc["Healthcheck"] = hc

    b.commit_meta(st, summary, mutate)


def do_arg(b: StageBuilder, st: State, node: Node) -> None:
    for word in split_words_raw(node.args, b.escape):
        name, sep, default = word.partition("=")
        value: str | None
        if name in b.opts.buildargs and b.opts.buildargs[name] is not None:
            value = b.opts.buildargs[name]
        elif sep:
            value = b.word(default, st, node.line)
        elif name in b.meta_args:
            value = b.meta_args[name]
        else:
            value = None
        b.used_args.add(name)
        st.args[name] = value
        summary = f"ARG {name}" + (f"={b.word(default, st, node.line)}" if sep else "")
        b.commit_meta(st, summary, _nothing, extra_key=value)


def do_workdir(b: StageBuilder, st: State, node: Node) -> None:
    wd = b.word(node.args, st, node.line)
    if not wd.startswith("/"):
        wd = posixpath.join(st.cc.get("WorkingDir") or "/", wd)
    wd = posixpath.normpath(wd)
    fs = ImageFS(st.layer_dirs)
    summary = f"WORKDIR {wd}"
    key = cache_key(st.image_id or "scratch", "workdir", wd, st.shell)
    cfg = copy.deepcopy(st.config)
    cfg.setdefault("config", empty_container_config())["WorkingDir"] = wd
    cfg["config"]["Image"] = st.image_id
    prefix = " ".join(st.shell)
    if b.try_cache(st, key, f"{prefix} #(nop) {summary}", cfg["config"]):
        return
    lb = LayerBuilder()  # docker commits WORKDIR as a layer: the directory when it is new, else nothing
    if not fs.is_dir(wd):
        b.ancestors(lb, fs, fs.resolve(wd).lstrip("/") + "/x", (0, 0))
    ccc = copy.deepcopy(cfg["config"])
    ccc["Cmd"] = [*st.shell, f"#(nop) {summary}"]
    b.committed_in_container(st, ccc, lambda cid: b.finish(
        st, cfg, ccc, f"{prefix} #(nop) {summary}", lb, key, "workdir", summary, empty=False,
        container_id=cid, announce=False))


STEPS: dict[str, Step] = {
    "env": do_env, "label": do_label, "maintainer": do_maintainer, "cmd": do_cmd, "entrypoint": do_entrypoint,
    "expose": do_expose, "volume": do_volume, "user": do_user, "stopsignal": do_stopsignal, "shell": do_shell,
    "onbuild": do_onbuild, "healthcheck": do_healthcheck, "arg": do_arg, "workdir": do_workdir,
}
