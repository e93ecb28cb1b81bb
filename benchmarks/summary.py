"""The markdown summary of a `python -m benchmarks` run: each part's table, the plot."""

from __future__ import annotations

from pathlib import Path

import orjson

from benchmarks import burst, drain, hot, pause, scale, starts, tradeoff

# Parts run on their own (not by `python -m benchmarks`): their last results, if any.
STANDALONE = {
    "burst": ("Bursts from zero (python -m benchmarks.burst)", burst.report),
    "pause": ("Pausing idle containers (python -m benchmarks.pause)", pause.report),
}


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
    for part, (title, render) in STANDALONE.items():
        saved = out / f"{part}.json"
        if saved.exists():
            result = orjson.loads(saved.read_bytes())
            when = f"{result['machine']['when']}, commit {result['machine']['commit']}"
            lines += ["", f"## {title}", "", f"Run on its own: {when}.", "", "```"]
            lines += [render(result["results"]), "```"]
    path = out / "summary.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _quick(results: dict) -> bool:
    return any(r.get("quick") for r in results.values())
