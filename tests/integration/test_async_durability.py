"""kill -9 during a burst of async calls, then a restart: every call ends once, none lost,
none run twice unless its route retries. Runs are counted on the engine's side (the start
events of cold containers, labelled with their call), not from the executor's records."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import Counter
from pathlib import Path

import aiohttp

from executor.async_calls import RESTARTED
from tests.conftest import GROUPS
from tests.integration.test_async import EngineStarts
from tests.integration.test_cli import free_port, serve, stop

CALLS = 500
KILL_AFTER = 100  # calls ended before the kill


def states(db: Path) -> dict[str, tuple[str, str, str | None]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT id, route, state, error FROM calls").fetchall()
    return {call_id: (route, state, error) for call_id, route, state, error in rows}


def queue_rows(db: Path, state: str) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT id FROM queue WHERE state = ?", (state,))}


async def until(check, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.2)


async def test_kill_9_during_500_async_calls_loses_none_and_runs_none_twice(tmp_path):
    db, log = tmp_path / "executor.db", tmp_path / "server.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = serve(db, port, log)
    with sqlite3.connect(db) as conn:
        group = conn.execute("SELECT value FROM meta WHERE key = 'group_id'").fetchone()[0]
    GROUPS.add(group)
    engine_starts = EngineStarts(group, tmp_path / "starts")
    restarted = None
    try:
        async with aiohttp.ClientSession(url) as http:
            await http.post("/v1/apps", json={"app": {"name": "demo"}})
            for path, retries in (("/once", 0), ("/retried", 1)):
                route = {"image": "executor/hello", "type": "async", "retries": retries}
                async with http.put(f"/v1/apps/demo/routes{path}", json={"route": route}) as r:
                    assert r.status in (200, 201), await r.text()

            gate = asyncio.Semaphore(32)

            async def submit(i: int) -> tuple[str, str]:
                path = "/once" if i % 2 else "/retried"
                async with gate, http.post(f"/r/demo{path}", data=b'{"name": "x"}') as r:
                    assert r.status == 202, await r.text()
                    return (await r.json())["call_id"], path

            began = time.monotonic()
            submitted = dict(await asyncio.gather(*(submit(i) for i in range(CALLS))))
            accepted = time.monotonic() - began
            assert len(submitted) == CALLS

            def ended_count() -> int:
                return sum(s[1] in ("success", "error") for s in states(db).values())

            await until(lambda: ended_count() >= KILL_AFTER, 120, "calls did not run")
        process.kill()  # SIGKILL: no drain, no flush
        process.wait(timeout=10)
        running_at_kill = queue_rows(db, "running")
        queued_at_kill = queue_rows(db, "queued")
        done_at_kill = CALLS - len(running_at_kill) - len(queued_at_kill)

        began = time.monotonic()
        restarted = serve(db, port, log)

        def all_ended() -> bool:
            return all(
                s is not None and s[1] in ("success", "error")
                for s in map(states(db).get, submitted)
            )

        await until(all_ended, 240, "calls still queued or running after the restart")
        drained = time.monotonic() - began
    finally:
        if restarted is not None:
            stop(restarted)
        process.kill()
        runs = Counter(engine_starts.calls())
        engine_starts.close()

    records = states(db)
    assert set(runs) <= set(submitted), "a container ran for a call nobody made"
    print(
        f"\n{CALLS} calls accepted in {accepted:.2f} s; at the kill: {done_at_kill} ended, "
        f"{len(running_at_kill)} running, {len(queued_at_kill)} queued; "
        f"after the restart all ended in {drained:.1f} s"
    )
    assert running_at_kill, "the kill found no call running: it proved nothing"
    assert queued_at_kill, "the kill found no call queued: it proved nothing"
    for call_id, path in submitted.items():
        route, state, error = records[call_id]
        assert route == path
        if path == "/once":
            assert runs[call_id] <= 1, (call_id, runs[call_id])
            if call_id in running_at_kill:
                assert (state, error) == ("error", RESTARTED), records[call_id]
            else:
                assert state == "success" and runs[call_id] == 1, (records[call_id], runs[call_id])
        else:
            # One retry: what the kill interrupted runs again, once.
            assert state == "success", records[call_id]
            if call_id in running_at_kill:
                assert 0 <= runs[call_id] - 1 <= 1, runs[call_id]
            else:
                assert runs[call_id] == 1, (call_id, runs[call_id])
