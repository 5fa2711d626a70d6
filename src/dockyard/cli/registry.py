"""Command name → module. main imports only the module of the command being run (start-up time).

Each module defines ``configure(p: argparse.ArgumentParser)`` and ``run(args, ctx) -> int``.
A value "module:prefix" means the module holds several commands, named ``configure_<prefix>`` and
``run_<prefix>``. Aliases map to the same entry. Keep entries grouped by owner.
"""

from __future__ import annotations

COMMANDS: dict[str, str] = {
    # containers (cli/commands/containers*.py)
    # images (cli/commands/images.py)
    # networks (cli/commands/networks.py)
    # system (cli/commands/system.py)
}

# docker's short aliases: `dockyard ps` == `dockyard container ls`, etc.
ALIASES: dict[str, str] = {}

# Two-word command groups (`dockyard image ls`); a group word alone prints its help.
GROUPS = ("container", "image", "network", "volume", "system", "builder", "compose", "registry")
