"""Format `http-stream`: a hot function. Reads {"name": "..."} (or nothing) and answers
"Hello <name>!"; the container stays up between calls."""

import json

from fnserve import serve


def hello(headers, body):
    try:
        name = json.loads(body or b"{}").get("name") or "World"
    except (ValueError, AttributeError):
        name = "World"
    return 200, {"Content-Type": "text/plain; charset=utf-8"}, f"Hello {name}!\n".encode()


if __name__ == "__main__":
    serve(hello)
