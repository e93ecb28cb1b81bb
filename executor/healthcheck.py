"""The container image's HEALTHCHECK: exit 0 when /health/live answers 200.

Standard library only, so the image needs no curl; `python3 -m executor.healthcheck`."""

from __future__ import annotations

import os
import sys
import urllib.request


def main() -> int:
    port = os.environ.get("EXECUTOR_PORT", "8080")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=2) as r:
            return 0 if r.status == 200 else 1
    except OSError as exc:
        print(f"executor healthcheck: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
