"""Start-up cleanup: containers of this executor's group left by an earlier process.

Only the own group (this database) is touched, never another executor's containers on
the same engine.
"""

from __future__ import annotations

import asyncio
import logging

from executor.docker.engine import Engine
from executor.docker.events import ContainerEvents
from executor.docker.spec import Identity
from executor.errors import EngineError

log = logging.getLogger(__name__)


async def remove_orphans(engine: Engine, identity: Identity) -> int:
    """Removes the group's containers whose instance is not this one; returns how many."""
    containers = await engine.containers(
        {"executor.managed": "true", "executor.group": identity.group}
    )
    orphans = [
        c["Id"]
        for c in containers
        if (c.get("Labels") or {}).get("executor.instance") != identity.instance
    ]
    results = await asyncio.gather(*(engine.remove(cid) for cid in orphans), return_exceptions=True)
    for cid, result in zip(orphans, results, strict=True):
        if isinstance(result, EngineError):
            log.warning("could not remove orphan container %s: %s", cid[:12], result.message)
    if orphans:
        log.info("removed %d container(s) left by an earlier executor", len(orphans))
    return len(orphans)


async def remove_orphans_when_connected(
    engine: Engine, identity: Identity, events: ContainerEvents
) -> None:
    """Removes the orphans once the engine answers, however long that takes."""
    while True:
        await events.connected.wait()
        try:
            await remove_orphans(engine, identity)
            return
        except EngineError as exc:
            log.warning("start-up cleanup failed, will retry: %s", exc.message)
            await asyncio.sleep(1.0)
