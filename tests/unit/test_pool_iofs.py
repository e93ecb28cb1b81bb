"""iofs directories: the one socket the executor accepts in each (no Docker)."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from executor.pool import iofs


@pytest.fixture
def directory() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="iofs-", dir="/tmp"))  # short: socket path limit
    yield path
    iofs.remove(path)


def listen(path: Path) -> socket.socket:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen()
    return server


def test_the_socket_itself_or_a_relative_link_to_one_beside_it_is_accepted(directory):
    with listen(directory / "phonylsnr.sock"):
        os.symlink("phonylsnr.sock", directory / "lsnr.sock")
        assert iofs.socket_path(directory) == str(directory / "phonylsnr.sock")
        os.unlink(directory / "lsnr.sock")
        os.rename(directory / "phonylsnr.sock", directory / "lsnr.sock")
        assert iofs.socket_path(directory) == str(directory / "lsnr.sock")


@pytest.mark.parametrize("target", ["/var/run/docker.sock", "../x/lsnr.sock", "..", "sub/s"])
def test_a_link_that_leaves_the_directory_is_refused(directory, target):
    os.symlink(target, directory / "lsnr.sock")
    with pytest.raises(iofs.UnsafeSocket, match="only a socket in the same directory"):
        iofs.socket_path(directory)


def test_a_link_to_a_link_or_to_a_file_is_refused(directory):
    (directory / "file").write_text("not a socket")
    os.symlink("file", directory / "lsnr.sock")
    with pytest.raises(iofs.UnsafeSocket, match="not a socket"):
        iofs.socket_path(directory)
    os.unlink(directory / "lsnr.sock")
    os.symlink("/var/run/docker.sock", directory / "hop")
    os.symlink("hop", directory / "lsnr.sock")
    with pytest.raises(iofs.UnsafeSocket, match="not a socket"):
        iofs.socket_path(directory)


def test_no_socket_yet_is_not_found(directory):
    with pytest.raises(FileNotFoundError):
        iofs.socket_path(directory)


def test_a_listener_outside_the_container_is_refused():
    with pytest.raises(iofs.UnsafeSocket, match="outside the container"):
        iofs.check_peer(os.getpid(), "0123456789ab" * 5)
    iofs.check_peer(0, "any")  # a pid outside our namespace: the symlink check guards


def test_an_iofs_directory_is_a_small_tmpfs_and_goes_with_its_mount(directory):
    inner = directory / "c1"
    iofs.create(inner, 64, tmpfs=True)
    stat = os.statvfs(inner)
    assert stat.f_blocks * stat.f_frsize == 64 * 1024
    assert oct(inner.stat().st_mode & 0o777) == "0o777"
    iofs.clear(directory)
    assert not directory.exists()
    assert str(inner) not in Path("/proc/self/mountinfo").read_text()
