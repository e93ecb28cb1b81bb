"""An FDK function for the tests: echoes what it saw, answers 201 with headers, and
raises when the body says so."""

import io
import json

from fdk import response


def handler(ctx, data: io.BytesIO | None = None):
    body = data.getvalue().decode()
    if body == "raise":
        raise RuntimeError("the function raised")
    seen = {
        "body": body,
        "method": ctx.Method(),
        "url": ctx.RequestURL(),
        "headers": dict(ctx.Headers()),
        "call_id": ctx.CallID(),
    }
    return response.Response(
        ctx,
        response_data=json.dumps(seen),
        headers={"Content-Type": "application/json", "X-Fdk-Test": "yes"},
        status_code=201,
    )
