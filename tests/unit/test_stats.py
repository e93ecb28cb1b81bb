"""IronFunctions' /stats counters."""

from executor.stats import CallStats


def test_calls_are_counted_running_then_complete_or_failed_per_route():
    stats = CallStats()
    stats.started(("a", "/x"))
    stats.started(("a", "/x"))
    stats.ended(("a", "/x"), failed=False)
    stats.started(("b", "/y"))
    stats.ended(("b", "/y"), failed=True)
    snapshot = stats.snapshot({("a", "/x"): 3, ("c", "/z"): 1})
    assert (snapshot["Queue"], snapshot["Running"], snapshot["Complete"], snapshot["Failed"]) == (
        4,
        1,
        1,
        1,
    )
    assert snapshot["FunctionStatsMap"]["a/x"] == {
        "Queue": 3,
        "Running": 1,
        "Complete": 1,
        "Failed": 0,
    }
    assert snapshot["FunctionStatsMap"]["c/z"]["Queue"] == 1
