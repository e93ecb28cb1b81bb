"""The output budget: a burst, then a rate; past it, the wait before reading on."""

from executor.formats.budget import CHUNK_COST, OutputBudget


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_output_within_the_burst_is_read_at_once():
    budget = OutputBudget(rate=1000, burst=10_000, clock=Clock())
    assert budget.spend(5000) == 0
    assert budget.spend(4000 - 2 * CHUNK_COST) == 0
    assert budget.throttled == 0


def test_past_the_burst_reading_waits_for_the_rate_to_pay_the_debt():
    clock = Clock()
    budget = OutputBudget(rate=1000, burst=1000, clock=clock)
    assert budget.spend(1000 - CHUNK_COST) == 0
    assert budget.spend(1000 - CHUNK_COST) == 1.0  # 1000 bytes owed at 1000 a second
    assert budget.throttled == 1
    clock.now = 1.0
    assert budget.spend(0) == CHUNK_COST / 1000  # the debt paid, only this chunk's cost


def test_many_small_writes_cost_per_write_not_per_byte():
    budget = OutputBudget(rate=1e9, burst=100 * CHUNK_COST, clock=Clock())
    waits = [budget.spend(1) for _ in range(101)]
    assert waits[:99] == [0] * 99 and waits[-1] > 0


def test_an_idle_budget_refills_to_its_burst_only():
    clock = Clock()
    budget = OutputBudget(rate=1000, burst=2000, clock=clock)
    clock.now = 3600.0
    assert budget.spend(2000 - CHUNK_COST) == 0
    assert budget.spend(1) > 0
