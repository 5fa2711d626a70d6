"""Turn the forked runtime process into the container's process.

Shared by the container init and by ``exec``: find the executable inside
the container (runc's messages, since Docker maps them to exit codes), set
rlimits, user, groups, capabilities, no_new_privs and seccomp in runc's
order, then execve.  Everything is imported before the fork because after
pivot_root the host's Python files are out of reach.
"""

from __future__ import annotations

import os
import resource
import signal
import stat

from dockyard.runtime import caps as capmod
from dockyard.runtime.errors import OCIRuntimeError
from dockyard.runtime.spec import env_to_dict
from dockyard.sys.linux import PR_SET_NO_NEW_PRIVS, prctl

TYPE_CHECKING = False  # typing costs milliseconds of import on every runtime command
if TYPE_CHECKING:
    from typing import Any

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# signals Python itself sets to SIG_IGN; an ignored disposition survives execve
_PYTHON_IGNORED = (signal.SIGPIPE, signal.SIGXFSZ)


def _is_executable_file(path: str) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and bool(st.st_mode & 0o111)


def lookup_executable(name: str, env: dict[str, str]) -> str:
    """Resolve ``args[0]`` like Go's exec.LookPath inside the container (runc's wording)."""
    if "/" in name:
        try:
            st = os.stat(name)
        except FileNotFoundError:
            raise OCIRuntimeError(f'exec: "{name}": stat {name}: no such file or directory', "not_found") from None
        except PermissionError:
            raise OCIRuntimeError(f'exec: "{name}": stat {name}: permission denied', "permission") from None
        if stat.S_ISDIR(st.st_mode) or not st.st_mode & 0o111:
            raise OCIRuntimeError(f'exec: "{name}": permission denied', "permission")
        return name
    for directory in env.get("PATH", DEFAULT_PATH).split(":"):
        candidate = os.path.join(directory or ".", name)
        if _is_executable_file(candidate):
            return candidate
    raise OCIRuntimeError(f'exec: "{name}": executable file not found in $PATH', "not_found")


def home_for(uid: int) -> str:
    """HOME from the container's /etc/passwd, as runc fills it in when unset."""
    try:
        with open("/etc/passwd") as fh:
            for line in fh:
                parts = line.rstrip("\n").split(":")
                if len(parts) >= 6 and parts[2] == str(uid):
                    return parts[5] or "/"
    except OSError:
        pass
    return "/"


def process_env(proc: dict[str, Any]) -> dict[str, str]:
    env = env_to_dict(proc.get("env") or [])
    if "HOME" not in env:
        env["HOME"] = home_for(int((proc.get("user") or {}).get("uid", 0)))
    return env


def set_rlimits(proc: dict[str, Any]) -> None:
    """process.rlimits, set while we still hold CAP_SYS_RESOURCE."""
    for rl in proc.get("rlimits") or []:
        which = getattr(resource, rl["type"], None)
        if which is None:
            raise OCIRuntimeError(f"invalid rlimit type {rl['type']}", "invalid")
        resource.setrlimit(which, (int(rl.get("soft", 0)), int(rl.get("hard", 0))))


def _known(names: list[str] | None) -> list[str]:
    """Drop names this kernel lacks, as runc does with a warning."""
    out = []
    top = capmod.last_cap()
    for name in names or []:
        try:
            if capmod.cap_number(name) <= top:
                out.append(capmod.normalize(name))
        except ValueError:
            continue
    return out


def set_identity(proc: dict[str, Any]) -> None:
    """Bounding set, user and groups, then the other capability sets (runc's finalizeNamespace)."""
    capabilities = proc.get("capabilities")
    user = proc.get("user") or {}
    uid = int(user.get("uid", 0))
    gid = int(user.get("gid", 0))
    if capabilities is not None:
        capmod.drop_bounding(_known(capabilities.get("bounding")))
        capmod.set_keepcaps(True)
    os.setgroups([int(g) for g in user.get("additionalGids") or []])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if capabilities is not None:
        capmod.set_keepcaps(False)
        capmod.set_caps(
            _known(capabilities.get("effective")),
            _known(capabilities.get("permitted")),
            _known(capabilities.get("inheritable")),
        )
        capmod.clear_ambient()
        for name in _known(capabilities.get("ambient")):
            try:  # like runc, a cap missing from permitted/inheritable is skipped
                capmod.raise_ambient([name])
            except PermissionError:
                continue
    umask = user.get("umask")
    os.umask(0o022 if umask is None else int(umask))


def enter_cwd(proc: dict[str, Any]) -> None:
    cwd = proc.get("cwd") or "/"
    try:
        os.chdir(cwd)
    except OSError as exc:
        raise OCIRuntimeError(f"chdir to cwd ({cwd!r}) set in config.json failed: {exc.strerror}", "other") from None


def set_no_new_privs() -> None:
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def load_seccomp(program: bytes | None, flags: int) -> None:
    if program:
        from dockyard.sys.linux import seccomp_set_filter

        seccomp_set_filter(program, flags)


def reset_signals() -> None:
    """Default dispositions and an empty mask for the new program."""
    for sig in _PYTHON_IGNORED:
        signal.signal(sig, signal.SIG_DFL)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def execute(path: str, args: list[str], env: dict[str, str]) -> None:
    """execve with default signal dispositions; on failure report like runc and exit."""
    reset_signals()
    try:
        os.execve(path, args, env)
    except OSError as exc:
        os.write(2, f"exec {path}: {os.strerror(exc.errno or 0).lower()}\n".encode())
    os._exit(255)
