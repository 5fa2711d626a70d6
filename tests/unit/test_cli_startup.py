"""The CLI's start-up cost: what the hot commands import, and `--version` without the daemon."""

from __future__ import annotations

import subprocess
import sys

# Modules the everyday commands (run, exec, ps) must not pay for at start-up.
HEAVY = ("socket", "typing", "gettext", "locale", "datetime", "signal", "importlib", "selectors", "platform")


def _imported_after(code: str) -> list[str]:
    probe = f"import sys\n{code}\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return out.split()


def test_hot_commands_import_nothing_heavy() -> None:
    code = ("from dockyard.cli.app import _load\n"
            "for name in ('run', 'exec', 'ps', 'start', 'rm'):\n"
            "    _load(name)\n")
    assert _imported_after(code) == []


def test_version_flag_is_one_line_without_argparse_or_client() -> None:
    code = ("from dockyard.cli.main import main\n"
            "assert main(['--version']) == 0\n"
            "assert 'argparse' not in sys.modules and 'dockyard.client.api_client' not in sys.modules\n")
    probe = f"import sys\n{code}"
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    from dockyard import __version__

    assert r.stdout == f"Dockyard version {__version__}, build dockyard\n"


def test_parser_help_and_errors_keep_argparse_wording() -> None:
    """argparse runs without gettext: its messages must read exactly as before."""
    r = subprocess.run([sys.executable, "-m", "dockyard.cli.main", "ps", "--no-such-flag"],
                       capture_output=True, text=True)
    assert r.returncode == 125
    assert r.stderr == "dockyard ps: unknown flag: --no-such-flag\nSee 'dockyard ps --help'.\n"
    r = subprocess.run([sys.executable, "-m", "dockyard.cli.main", "ps", "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    assert "show this help message and exit" in r.stdout
