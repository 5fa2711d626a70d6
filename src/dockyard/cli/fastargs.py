"""The common case of `run`/`create`/`exec` flags parsed without argparse.

Importing argparse costs ~8 ms of a ~30 ms CLI start (it pulls in re, enum and functools). A command whose
positionals are single values ending in a REMAINDER (``IMAGE [COMMAND...]``) has flags that always come first,
so plain argv is easy to read exactly as argparse would. The command's ``configure`` runs against a recorder
instead of a parser; anything this reader is not sure of — help, ``--``, ``-x=value``, values that start with
"-", optional-value flags, an unknown flag, a bad choice or number — answers None and the caller parses with
argparse, which owns every message, error and help text. tests/unit/test_fastargs.py checks both agree.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs milliseconds of start-up; annotations are strings
if TYPE_CHECKING:
    from typing import Any

REMAINDER = "..."  # argparse.REMAINDER's value
_SIMPLE_ACTIONS = ("store", "store_true", "store_false", "append")


class Namespace:
    """Parsed flags as attributes, compared like argparse.Namespace."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)

    def __eq__(self, other: object) -> bool:
        return vars(self) == vars(other)

    def __repr__(self) -> str:
        return f"Namespace({', '.join(f'{k}={v!r}' for k, v in sorted(vars(self).items()))})"


class _Flag:
    __slots__ = ("action", "choices", "const", "default", "dest", "nargs", "required", "type")

    def __init__(self, dest: str, kw: dict[str, Any]) -> None:
        self.dest = dest
        self.action = kw.get("action", "store")
        self.nargs = kw.get("nargs")
        self.const = kw.get("const")
        self.choices = kw.get("choices")
        self.type = kw.get("type")
        self.required = bool(kw.get("required"))
        if "default" in kw:
            self.default = kw["default"]
        else:
            self.default = False if self.action == "store_true" else True if self.action == "store_false" else None


class FlagRecorder:
    """Stands in for the ArgumentParser a command's ``configure`` fills: keeps each flag's spec."""

    def __init__(self) -> None:
        self.usage: str | None = None
        self.options: dict[str, _Flag] = {}
        self.flags: list[_Flag] = []
        self.positionals: list[_Flag] = []

    def add_argument(self, *names: str, **kw: Any) -> None:
        if names[0][:1] != "-":
            self.positionals.append(_Flag(kw.get("dest", names[0]), kw))
            return
        long_names = [n for n in names if n.startswith("--")]
        dest = kw.get("dest") or (long_names[0] if long_names else names[0]).lstrip("-").replace("-", "_")
        flag = _Flag(dest, kw)
        for n in names:  # conflict_handler="resolve": a later flag takes the name over
            old = self.options.get(n)
            if old is not None:
                old_names = [k for k, v in self.options.items() if v is old]
                if len(old_names) == 1:
                    self.flags.remove(old)
            self.options[n] = flag
        self.flags.append(flag)

    def parse(self, args: list[str]) -> Namespace | None:
        """The Namespace argparse would give for ``args``, or None when argparse must decide."""
        pos = self.positionals
        if pos and (pos[-1].nargs != REMAINDER or any(p.nargs is not None for p in pos[:-1])):
            return None
        values: dict[str, Any] = {}
        for f in self.flags:
            if f.action not in _SIMPLE_ACTIONS:
                return None
            if f.dest not in values:
                values[f.dest] = f.default
        for p in pos:
            values[p.dest] = p.default
        seen: set[str] = set()
        i, n = 0, len(args)
        while i < n:
            arg = args[i]
            if arg[:1] != "-" or arg == "-":
                break
            if arg == "--":
                return None
            name, eq, value = arg.partition("=")
            flag = self.options.get(name if eq and name.startswith("--") else arg)
            if flag is None:
                if eq or arg.startswith("--") or not self._all_switches(arg):
                    return None
                for ch in arg[1:]:  # -it: a run of switches
                    sw = self.options[f"-{ch}"]
                    values[sw.dest] = sw.action == "store_true"
                    seen.add(sw.dest)
                i += 1
                continue
            if flag.nargs is not None:
                return None
            if flag.action in ("store_true", "store_false"):
                if eq:
                    return None
                values[flag.dest] = flag.action == "store_true"
            else:
                if not eq:
                    i += 1
                    if i >= n:
                        return None
                    value = args[i]
                if value[:1] == "-":
                    return None
                converted = self._convert(flag, value)
                if converted is None:
                    return None
                if flag.action == "append":
                    values[flag.dest] = [*(values[flag.dest] or []), converted]
                else:
                    values[flag.dest] = converted
            seen.add(flag.dest)
            i += 1
        rest = args[i:]
        if "--" in rest or len(rest) < len(pos) - 1 or any(f.required and f.dest not in seen for f in self.flags):
            return None
        if not pos:
            if rest:  # a stray argument: argparse words the error
                return None
        else:
            for p in pos[:-1]:
                values[p.dest] = rest.pop(0)
            values[pos[-1].dest] = rest
        for f in self.flags:  # argparse converts string defaults it did not see on the command line
            if f.dest not in seen and isinstance(values[f.dest], str) and f.type is not None:
                converted = self._convert(f, values[f.dest])
                if converted is None:
                    return None
                values[f.dest] = converted
        return Namespace(**values)

    def _all_switches(self, arg: str) -> bool:
        if arg.startswith("--") or len(arg) < 3:
            return False
        for ch in arg[1:]:
            f = self.options.get(f"-{ch}")
            if f is None or f.action not in ("store_true", "store_false") or f.nargs is not None:
                return False
        return True

    @staticmethod
    def _convert(flag: _Flag, value: str) -> Any:
        out: Any = value
        if flag.type is not None:
            if flag.type is not int:
                return None
            try:
                out = int(value)
            except ValueError:
                return None
        if flag.choices is not None and out not in flag.choices:
            return None
        return out


def parse(configure: Any, args: list[str]) -> Namespace | None:
    """Run ``configure`` against a recorder and read ``args``; None means: use argparse."""
    rec = FlagRecorder()
    try:
        configure(rec)
    except AttributeError:  # the command wants more of the parser than the recorder offers
        return None
    return rec.parse(args)
