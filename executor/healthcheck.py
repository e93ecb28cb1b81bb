"""The container image's HEALTHCHECK: exit 0 when /health/live (or, given `ready`,
/health/ready) answers 200.

Standard library only, so the image needs no curl: `python3 -m executor.healthcheck
[live|ready]`. The image checks liveness (a node whose database is down still serves warm
calls); deploy/compose.yaml checks readiness, as its balancer does."""

from __future__ import annotations

import os
import sys
import urllib.request


def main(argv: list[str]) -> int:
    check = argv[0] if argv else "live"
    if check not in ("live", "ready"):
        print("usage: python3 -m executor.healthcheck [live|ready]", file=sys.stderr)
        return 2
    port = os.environ.get("EXECUTOR_PORT", "8080")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/{check}", timeout=2) as r:
            return 0 if r.status == 200 else 1
    except OSError as exc:
        print(f"executor healthcheck: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
