"""Where hot containers' iofs directories go, and the socket path limit."""

from pathlib import Path

import pytest

from executor.config import Settings
from executor.errors import BadSetting
from executor.pool.pools import SOCKET_PATH_MAX, iofs_host_root, iofs_root

GROUP = "01m8cjqp5xc7qggbphb7tjj3f7"


def test_each_executor_has_its_own_folder_under_iofs_dir():
    assert iofs_root(Settings(), GROUP) == Path("/tmp/exr-b7tjj3f7")
    assert iofs_root(Settings(iofs_dir=Path("/run/x")), GROUP) == Path("/run/x/exr-b7tjj3f7")


def test_an_iofs_dir_too_long_for_a_socket_path_is_refused():
    tail = len("/exr-b7tjj3f7/123456789012/phonylsnr.sock")
    longest_ok = "/" + "d" * (SOCKET_PATH_MAX - tail - 1)
    iofs_root(Settings(iofs_dir=Path(longest_ok)), GROUP)
    with pytest.raises(BadSetting, match="too long"):
        iofs_root(Settings(iofs_dir=Path(longest_ok + "d")), GROUP)


def test_the_engine_side_folder_is_iofs_host_dir_when_set():
    assert iofs_host_root(Settings(), GROUP) == Path("/tmp/exr-b7tjj3f7")
    on_host = Settings(iofs_dir=Path("/iofs"), iofs_host_dir=Path("/srv/iofs"))
    assert iofs_root(on_host, GROUP) == Path("/iofs/exr-b7tjj3f7")
    assert iofs_host_root(on_host, GROUP) == Path("/srv/iofs/exr-b7tjj3f7")
    with pytest.raises(BadSetting, match="not an absolute path"):
        iofs_host_root(Settings(iofs_host_dir=Path("srv")), GROUP)


def test_iofs_host_dir_is_read_from_the_fn_projects_variable_too(monkeypatch):
    monkeypatch.setenv("FN_IOFS_DOCKER_PATH", "/fn")
    assert Settings().iofs_host_dir == Path("/fn")
    monkeypatch.setenv("EXECUTOR_IOFS_HOST_DIR", "/ours")
    assert Settings().iofs_host_dir == Path("/ours")
