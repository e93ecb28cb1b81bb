import asyncio

from executor.docker.events import ContainerEvents


def die(cid, code, time_nano=1_700_000_000_123_456_789):
    attributes = {"exitCode": str(code)}
    return {
        "id": cid,
        "Action": "die",
        "Actor": {"ID": cid, "Attributes": attributes},
        "timeNano": time_nano,
    }


async def test_exit_status_reaches_the_waiter():
    events = ContainerEvents(engine=None, group_id="g")
    exited = events.expect_exit("c1")
    events._receive(die("c1", 3))
    assert await exited == 3


async def test_oom_is_remembered_until_forgotten():
    events = ContainerEvents(engine=None, group_id="g")
    events._receive({"id": "c1", "Action": "oom", "Actor": {"ID": "c1", "Attributes": {}}})
    assert events.was_oom_killed("c1")
    events.forget("c1")
    assert not events.was_oom_killed("c1")


async def test_events_for_unknown_containers_are_ignored_and_since_advances():
    events = ContainerEvents(engine=None, group_id="g")
    events._receive(die("other", 0))
    assert events._since == "1700000000.123456789"


async def test_forget_cancels_the_waiter():
    events = ContainerEvents(engine=None, group_id="g")
    exited = events.expect_exit("c1")
    events.forget("c1")
    assert exited.cancelled()
    await asyncio.sleep(0)
