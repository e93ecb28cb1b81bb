"""Hot containers' iofs directories: each a small tmpfs, and the one socket in it.

A function can write nothing to the host's disk through its iofs directory: each is a
tmpfs of `iofs_size` KiB and a few inodes (`nosuid,nodev,noexec`, as the Fn agent mounts
its own), mounted by the executor before the container is created and unmounted when it
is removed. And the executor connects only to a socket inside that directory: never
through a symlink that leaves it (Fn's `checkSocketDestination`), never to a listener
outside the container (the peer's credentials, where its pid is visible).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import stat
from pathlib import Path

from executor.formats import http_stream

_libc = ctypes.CDLL(None, use_errno=True)
MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
MNT_DETACH = 2
# The socket, the FDK's symlink to it, and a few files a function may keep there.
INODES = 16


class UnsafeSocket(Exception):
    """The container's lsnr.sock is not a socket of its own: it is removed, 502."""


class CannotMount(Exception):
    """The executor may not mount a tmpfs (it is not root, or lacks CAP_SYS_ADMIN)."""


def create(directory: Path, size_kib: int, tmpfs: bool) -> None:
    """The container's iofs directory, mode 0777 (its function runs as any user), as a
    tmpfs of `size_kib` unless `tmpfs` is off. Its parent, this executor's root, is made
    again if something removed it."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    directory.mkdir()
    if not tmpfs:
        os.chmod(directory, 0o777)  # explicit: mkdir's mode is cut by the umask
        return
    options = f"size={size_kib}k,nr_inodes={INODES},mode=0777".encode()
    flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
    if _libc.mount(b"tmpfs", os.fsencode(directory), b"tmpfs", flags, options) != 0:
        code = ctypes.get_errno()
        directory.rmdir()
        if code == errno.EPERM:
            raise CannotMount(
                "cannot mount the iofs tmpfs (the executor needs root, or CAP_SYS_ADMIN in a "
                "container); EXECUTOR_IOFS_TMPFS=false uses plain directories, which a "
                "function can fill on the host's disk"
            )
        raise OSError(code, f"cannot mount a tmpfs on {directory}: {os.strerror(code)}")


def remove(directory: Path) -> None:
    """Unmounts (lazily: the container may still hold it) and deletes the directory."""
    _unmount(directory)
    shutil.rmtree(directory, ignore_errors=True)


def clear(root: Path) -> None:
    """Removes everything under `root`, tmpfs mounts left by a killed process included."""
    prefix = str(root.absolute()) + "/"
    with contextlib.suppress(OSError), open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f]
    for point in sorted((m for m in mounts if m.startswith(prefix)), reverse=True):
        _unmount(Path(point))
    shutil.rmtree(root, ignore_errors=True)


def _unmount(directory: Path) -> None:
    if _libc.umount2(os.fsencode(directory), MNT_DETACH) != 0:
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOENT, errno.EPERM):  # not a mount point
            raise OSError(code, f"cannot unmount {directory}: {os.strerror(code)}")


def socket_path(directory: Path) -> str:
    """Where to connect for the container's `lsnr.sock`: the socket itself, or the socket
    in the same directory that a relative symlink names (the FDKs' phonylsnr.sock).
    Checked on every (re)connect; the connection goes to the target, not through the
    link. FileNotFoundError while there is no socket yet."""
    path = directory / http_stream.SOCKET_NAME
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        target = os.readlink(path)
        if "/" in target or target in (".", ".."):
            raise UnsafeSocket(
                f"lsnr.sock is a symlink to {target!r}: only a socket in the same "
                "directory is accepted"
            )
        path = directory / target
        info = os.lstat(path)
    if not stat.S_ISSOCK(info.st_mode):
        raise UnsafeSocket("lsnr.sock is not a socket")
    return str(path)


def check_peer(pid: int, container_id: str) -> None:
    """The listener must be a process of the container (its cgroup names it): a socket
    swapped between the check and the connect cannot reach another listener. A pid of 0
    is one outside the executor's pid namespace (the executor in a container): the
    symlink check above is then the guard."""
    if pid <= 0:
        return
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            own = container_id in f.read()
    except OSError:
        own = False
    if not own:
        raise UnsafeSocket("lsnr.sock is served by a process outside the container")
