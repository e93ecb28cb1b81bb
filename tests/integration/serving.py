"""`executor serve` in a subprocess, for the tests that need the real command (the CLI's,
the dashboard's: a browser's blocking driver calls cannot share the test's event loop
with an executor in process)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

EXECUTOR = [sys.executable, "-m", "executor"]


def serve(db: Path, port: int, log_path: Path, **env: str) -> subprocess.Popen:
    """`executor serve` on that database and port, once it answers /health/ready."""
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [*EXECUTOR, "serve", "--port", str(port), "--db", str(db)],
            stdout=log,
            stderr=log,
            env={**os.environ, "EXECUTOR_SHUTDOWN_GRACE": "2", **env},
        )
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, log_path.read_text()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=1):
                return process
        except OSError:
            assert time.monotonic() < deadline, "server not ready in 30 s"
            time.sleep(0.1)


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    finally:
        process.kill()
