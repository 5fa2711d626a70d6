"""The container's terminal: a pty from the container's own devpts.

The master goes to whoever listens on ``--console-socket`` (SCM_RIGHTS, the
way runc hands it over); the slave becomes /dev/console and the process's
controlling terminal and stdio.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import termios

_TIOCSPTLCK = 0x40045431
_TIOCGPTN = 0x80045430


def open_pty(ptmx_path: str) -> tuple[int, str]:
    """Open a new pty through ``ptmx_path``; return (master fd, slave path)."""
    master = os.open(ptmx_path, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, _TIOCSPTLCK, struct.pack("i", 0))
    number = struct.unpack("I", fcntl.ioctl(master, _TIOCGPTN, struct.pack("I", 0)))[0]
    slave_path = os.path.join(os.path.dirname(os.path.realpath(ptmx_path)), str(number))
    return master, slave_path


def connect_console_socket(path: str) -> socket.socket:
    """Connect to the caller's console socket (done before fork, on the host)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        raise
    return sock


def send_master(sock: socket.socket, master: int, name: str = "/dev/ptmx") -> None:
    """Hand the master fd over with SCM_RIGHTS, naming it like runc does."""
    socket.send_fds(sock, [name.encode()], [master])


def make_controlling(slave_path: str, width: int = 0, height: int = 0) -> None:
    """Open the slave as controlling tty (we lead our session) and put it on fds 0-2."""
    slave = os.open(slave_path, os.O_RDWR)
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    if width and height:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)
