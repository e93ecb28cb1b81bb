"""Format `http-stream`, written with the Fn Project's own Python FDK (PyPI `fdk`): the
same code runs unmodified on Fn."""

import io
import json

from fdk import response


def handler(ctx, data: io.BytesIO | None = None):
    try:
        name = json.loads(data.getvalue() or b"{}").get("name") or "World"
    except (ValueError, AttributeError):
        name = "World"
    return response.Response(
        ctx,
        response_data=json.dumps({"message": f"Hello {name}!"}),
        headers={"Content-Type": "application/json"},
    )
