"""Command name → module. main imports only the module of the command being run (start-up time).

Each module defines ``configure(p: argparse.ArgumentParser)`` and ``run(args, ctx) -> int``.
A value "module:prefix" means the module holds several commands, named ``configure_<prefix>`` and
``run_<prefix>``. Aliases map to the same entry. Keep entries grouped by owner.
"""

from __future__ import annotations

COMMANDS: dict[str, str] = {
    # containers (cli/commands/{run,lifecycle,ps,io,inspect,stats}.py)
    "run": "run:run",
    "create": "run:create",
    "start": "lifecycle:start",
    "stop": "lifecycle:stop",
    "restart": "lifecycle:restart",
    "kill": "lifecycle:kill",
    "pause": "lifecycle:pause",
    "unpause": "lifecycle:unpause",
    "rm": "lifecycle:rm",
    "wait": "lifecycle:wait",
    "rename": "lifecycle:rename",
    "update": "lifecycle:update",
    "container prune": "lifecycle:prune",
    "ps": "ps",
    "logs": "io:logs",
    "attach": "io:attach",
    "exec": "io:exec",
    "inspect": "inspect:inspect",
    "container inspect": "inspect:container_inspect",
    "top": "inspect:top",
    "diff": "inspect:diff",
    "stats": "stats",
    "cp": "cp",
    # images (cli/commands/images.py, cli/commands/image_transfer.py)
    "images": "images:ls",
    "image ls": "images:ls",
    "image list": "images:ls",
    "rmi": "images:rm",
    "image rm": "images:rm",
    "image remove": "images:rm",
    "tag": "images:tag",
    "image tag": "images:tag",
    "history": "images:history",
    "image history": "images:history",
    "image inspect": "images:inspect",
    "image prune": "images:prune",
    "image bootstrap": "images:bootstrap",
    "import": "image_transfer:import",
    "image import": "image_transfer:import",
    "export": "image_transfer:export",
    "container export": "image_transfer:export",
    "save": "image_transfer:save",
    "image save": "image_transfer:save",
    "load": "image_transfer:load",
    "image load": "image_transfer:load",
    "commit": "image_transfer:commit",
    "container commit": "image_transfer:commit",
    # builds (cli/commands/build.py)
    "build": "build",
    "image build": "build",
    "builder build": "build",
    "builder prune": "build:prune",
    # registries (cli/commands/distribution.py)
    "pull": "distribution:pull",
    "image pull": "distribution:pull",
    "push": "distribution:push",
    "image push": "distribution:push",
    "login": "distribution:login",
    "logout": "distribution:logout",
    "search": "distribution:search",
    # networks (cli/commands/networks.py)
    "network create": "networks:create",
    "network ls": "networks:ls",
    "network list": "networks:ls",
    "network inspect": "networks:inspect",
    "network rm": "networks:rm",
    "network remove": "networks:rm",
    "network connect": "networks:connect",
    "network disconnect": "networks:disconnect",
    "network prune": "networks:prune",
    "port": "networks:port",
    "container port": "networks:port",
    # volumes (cli/commands/volumes.py)
    "volume create": "volumes:create",
    "volume ls": "volumes:ls",
    "volume list": "volumes:ls",
    "volume inspect": "volumes:inspect",
    "volume rm": "volumes:rm",
    "volume remove": "volumes:rm",
    "volume prune": "volumes:prune",
    # contexts (cli/commands/contexts.py), in the docker CLI's own store
    "context create": "contexts:create",
    "context ls": "contexts:ls",
    "context list": "contexts:ls",
    "context use": "contexts:use",
    "context show": "contexts:show",
    "context inspect": "contexts:inspect",
    "context rm": "contexts:rm",
    "context remove": "contexts:rm",
    # outside the engine's scope, answered as the docker CLI answers without the feature (cli/commands/swarmless.py)
    **{f"{group} {sub}": f"swarmless:{group}_inspect" if sub == "inspect" else f"swarmless:{group}"
       for group, subs in (("swarm", ("ca", "init", "join", "join-token", "leave", "unlock", "unlock-key", "update")),
                           ("node", ("demote", "inspect", "ls", "list", "promote", "ps", "rm", "remove", "update")),
                           ("service", ("create", "inspect", "logs", "ls", "list", "ps", "rm", "remove", "rollback",
                                        "scale", "update")),
                           ("stack", ("config", "deploy", "up", "ls", "list", "ps", "rm", "remove", "down",
                                      "services")),
                           ("secret", ("create", "inspect", "ls", "list", "rm", "remove")),
                           ("config", ("create", "inspect", "ls", "list", "rm", "remove")))
       for sub in subs},
    # client-side docker features outside the scope ledger (cli/commands/clientside.py)
    **{f"trust {sub}": f"clientside:trust_{sub}" for sub in ("inspect", "revoke", "sign", "key", "signer")},
    **{f"manifest {sub}": f"clientside:manifest_{sub}" for sub in ("annotate", "create", "inspect", "push", "rm")},
    "plugin ls": "swarmless:plugin_ls",
    "plugin list": "swarmless:plugin_ls",
    "plugin inspect": "swarmless:plugin_inspect",
    # system (cli/commands/system.py)
    "version": "system:version",
    "info": "system:info",
    "events": "system:events",
    "system df": "system:df",
    "system prune": "system:prune",
    # access control (cli/commands/auth.py)
    "auth login": "auth:login",
    "auth client": "auth:client",
    "auth revoke": "auth:revoke",
    "auth policy": "auth:policy",
}

# docker's short aliases: `dockyard ps` == `dockyard container ls`, etc.
ALIASES: dict[str, str] = {
    # containers and system
    **{f"container {c}": c for c in ("run", "create", "start", "stop", "restart", "kill", "pause", "unpause",
                                      "rm", "wait", "rename", "update", "logs", "attach", "exec", "top", "diff",
                                      "stats", "ps")},
    "container ls": "ps", "container list": "ps", "container remove": "rm",
    "system info": "info", "system events": "events",
    "container cp": "cp",
}

# Two-word command groups (`dockyard image ls`); a group word alone prints its help.
GROUPS = ("container", "image", "network", "volume", "system", "builder", "compose", "registry", "auth",
          "context", "swarm", "node", "service", "stack", "secret", "config", "plugin", "trust", "manifest")
