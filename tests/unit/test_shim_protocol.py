"""The C monitor speaks protocol.py's protocol: its file names, command names and keys are the module's."""

from __future__ import annotations

import os
import re

from dockyard.runtime.shim import protocol

NATIVE = os.path.join(os.path.dirname(protocol.__file__), "native")


def _source(name: str) -> str:
    with open(os.path.join(NATIVE, name)) as f:
        return f.read()


def test_the_monitor_parses_exactly_the_protocol_s_keys_in_order() -> None:
    m = re.search(r"KEYS\[CMD_KEYS\]\s*=\s*\{([^}]*)\}", _source("command.c"))
    assert m, "command.c no longer declares KEYS[CMD_KEYS]"
    assert tuple(re.findall(r'"([^"]*)"', m.group(1))) == protocol.COMMAND_KEYS
    enum = re.search(r"enum \{ (K_[A-Z_, ]+) \};", _source("monitor.h"))
    assert enum and [k.strip()[2:].lower() for k in enum.group(1).split(",")] == list(protocol.COMMAND_KEYS)
    assert re.search(rf"#define CMD_KEYS {len(protocol.COMMAND_KEYS)}\b", _source("monitor.h"))


def test_the_monitor_serves_the_protocol_s_commands() -> None:
    served = set(re.findall(r'strcmp\(name, "([a-z]+)"\)', _source("monitor.c")))
    assert served == set(protocol.SERVED_BY["monitor"]) == set(protocol.COMMANDS)


def test_the_monitor_uses_the_protocol_s_file_names() -> None:
    c = _source("monitor.c")
    assert f'rename("{protocol.EXIT_NAME}.tmp", "{protocol.EXIT_NAME}")' in c
    assert f'unlink("{protocol.SOCKET_NAME}")' in c and f'unlink("{protocol.PID_NAME}")' in c
    # every quoted file-like name in the monitor is one of ours (a renamed file must change protocol.py too)
    names = set(re.findall(r'"([a-z]+\.(?:sock|json|pid|log))(?:\.tmp)?"', c))
    assert names <= {protocol.SOCKET_NAME, protocol.EXIT_NAME, protocol.PID_NAME, protocol.LOG_NAME}, names


def test_replies_the_protocol_documents() -> None:
    c = _source("monitor.c")
    assert '{\\"ok\\": true, \\"pid\\": %d, \\"running\\": %s' in c  # status
    assert '{\\"exit_code\\": %d, \\"oom_killed\\": %s, \\"finished_at\\": \\"%s\\"}' in c  # wait
    assert '{\\"ok\\": true, \\"log_size\\": %lld}' in c  # attach
    assert protocol.exec_names("0123456789abcdef") == ("exec-0123456789ab.sock", "exec-0123456789ab.json")
    assert protocol.encode({"cmd": "wait"}) == b'{"cmd": "wait"}\n'
