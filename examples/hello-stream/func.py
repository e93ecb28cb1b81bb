"""A Python hello in both formats, so the same logic can be measured hot and cold.

`http-stream` (FN_FORMAT=http-stream): a hot function; the container stays up between
calls. `default`: the request body on stdin, the answer on stdout, one container per call.
Reads {"name": "..."} (or nothing) and answers "Hello <name>!".
"""

import json
import os
import sys


def hello(headers, body):
    try:
        name = json.loads(body or b"{}").get("name") or "World"
    except (ValueError, AttributeError):
        name = "World"
    return 200, {"Content-Type": "text/plain; charset=utf-8"}, f"Hello {name}!\n".encode()


if __name__ == "__main__":
    if os.environ.get("FN_FORMAT") == "http-stream":
        from fnserve import serve

        serve(hello)
    else:
        sys.stdout.buffer.write(hello({}, sys.stdin.buffer.read())[2])
