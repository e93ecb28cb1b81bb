"""An FDK function for the tests: echoes what it saw, answers 201 with headers, logs a
line to stdout and one to stderr, and raises when the body says so."""

import io
import json
import sys

from fdk import response


def handler(ctx, data: io.BytesIO | None = None):
    body = data.getvalue().decode()
    # A line on each stream, for the log frame tests: kept with this call's record.
    print(f"fdk stdout: {body}", flush=True)
    print(f"fdk stderr: {body}", file=sys.stderr, flush=True)
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
