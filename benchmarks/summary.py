"""The markdown summary of a `python -m benchmarks` run: each part's table, the plot."""

from __future__ import annotations

from pathlib import Path

from benchmarks import drain, hot, scale, starts, tradeoff


def write_summary(results: dict, out: Path, seconds: float) -> Path:
    machine = next(iter(results.values()))["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"{machine['cores']} cores, {machine['memory_gib']} GiB, Docker {machine['docker']}, "
        f"Python {machine['python']}, commit {machine['commit']}, {machine['when']}; "
        f"the run took {seconds / 60:.1f} min"
        + (" (--quick: a smoke run, not figures to quote)." if _quick(results) else "."),
    ]
    sections = {
        "starts": ("Start kinds", lambda r: starts.report(r["results"])),
        "hot": ("Warm calls against concurrency", hot.report),
        "tradeoff": ("The trade-off: lag against idle memory", tradeoff.report),
        "scale": ("Scale", scale.report),
        "drain": ("Async calls: a burst drained on warm containers", drain.report),
    }
    for part, result in results.items():
        title, render = sections[part]
        lines += ["", f"## {title}", "", "```", render(result), "```"]
        if part == "tradeoff":
            lines += ["", "![the trade-off curve](plots/tradeoff.png)"]
    path = out / "summary.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _quick(results: dict) -> bool:
    return any(r.get("quick") for r in results.values())
