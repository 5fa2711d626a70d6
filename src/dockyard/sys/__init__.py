"""The one seam to the kernel's privileged calls: every ctypes binding, constant and wrapper lives here.

``dockyard.sys.linux`` wraps mount/umount2/unshare/setns/pivot_root/sethostname/prctl/capset/seccomp; each
failure is one error type, ``SyscallError`` (an ``OSError`` with the errno, the call and the path). The
calls go through one backend object, so tests swap in a recording fake (``tests/helpers/fakesys.py``) and
check rootfs, snapshot, netns and cgroup logic without root. Nothing above the runtime and storage opens
libc itself.
"""
