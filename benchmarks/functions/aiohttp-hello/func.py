"""An http-stream (Fn format) hello on aiohttp, listening on FN_LISTENER; a caller's
`X-Sleep: S` header makes it work S seconds first. With BACKGROUND_WORK set (route config)
it also works a little every 10 ms while idle, as a function with a metrics flusher or a
connection pool's keep-alive would (benchmarks/pause.py)."""

import asyncio
import os

from aiohttp import web


async def call(request: web.Request) -> web.Response:
    await request.read()
    # The trade-off benchmark's calls say how long the function works (X-Sleep: seconds).
    work = request.headers.get("Fn-Http-H-X-Sleep")
    if work:
        await asyncio.sleep(float(work))
    return web.Response(
        body=b"Hello bench!\n",
        headers={"Fn-Http-Status": "200", "Content-Type": "text/plain; charset=utf-8"},
    )


async def background_work() -> None:
    while True:
        sum(range(5000))
        await asyncio.sleep(0.01)


async def main() -> None:
    # Held here: main() never returns, so neither does the reference.
    work = asyncio.create_task(background_work()) if os.environ.get("BACKGROUND_WORK") else None
    app = web.Application()
    app.router.add_post("/call", call)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    path = os.environ["FN_LISTENER"].removeprefix("unix:")
    directory, name = os.path.split(path)
    # As Fn's FDKs: listen on a phony name, then link the real one to it.
    await web.UnixSite(runner, os.path.join(directory, "phony" + name)).start()
    os.chmod(os.path.join(directory, "phony" + name), 0o666)
    os.symlink("phony" + name, path)
    await asyncio.Event().wait()
    assert work is None or not work.done()


if __name__ == "__main__":
    asyncio.run(main())
