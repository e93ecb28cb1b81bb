"""From a folder of Go code to a called route (executor/workflow.py), against `docker
build` of the same context as the baseline, rounds interleaved:

- the first `executor build` of a Go function (its build image present, the function
  new to the engine), and a rebuild after a one-line change; the same two with `docker
  build`; where the engine spends it (the time from each build step's line to the next);
- `executor init` + `executor deploy` + the first call, end to end, on a running
  executor.

    python -m benchmarks.workflow [--rounds 3] [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import random
import re
import secrets
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks import common
from benchmarks.common import EXECUTOR, executor_server, table
from executor import runtimes


def timed(command: list[str], cwd: Path) -> tuple[float, dict[str, float]]:
    """Wall seconds of a build command, and the seconds from each `Step N/M : ...` line
    of its output to the next (what the engine spent on each step)."""
    began = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)  # fmt: skip
    steps: dict[str, float] = {}
    current, since = None, began
    assert process.stdout is not None
    for line in process.stdout:
        match = re.match(r"Step \d+/\d+ : (.*)", line)
        if match:
            now = time.perf_counter()
            if current is not None:
                steps[current] = now - since
            current, since = match.group(1)[:60], now
    process.wait()
    ended = time.perf_counter()
    if current is not None:
        steps[current] = ended - since
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed")
    return ended - began, steps


def change_one_line(folder: Path) -> None:
    source = folder / "func.go"
    source.write_text(source.read_text().replace("Hello %s!", f"Hi {secrets.token_hex(2)} %s!"))


def executor_builds(tmp: Path, name: str) -> dict:
    folder = tmp / name
    folder.mkdir()
    subprocess.run([*EXECUTOR, "init", "--runtime", "go", name], cwd=folder, check=True,
                   capture_output=True)  # fmt: skip
    first, steps = timed([*EXECUTOR, "build"], folder)
    change_one_line(folder)
    again, again_steps = timed([*EXECUTOR, "build"], folder)
    return {"first_s": first, "rebuild_s": again,
            "first_steps": steps, "rebuild_steps": again_steps}  # fmt: skip


def docker_builds(tmp: Path, name: str) -> dict:
    folder = tmp / name
    folder.mkdir()
    # New to the engine, as each executor build's function is (its func.yaml names it).
    hello = runtimes.RUNTIMES["go"].hellos["default"]
    (folder / "func.go").write_text(f"// {name}\n{hello}")
    (folder / "Dockerfile").write_text(runtimes.RUNTIMES["go"].dockerfile())
    first, _ = timed(["docker", "build", "-t", f"{name}:0.0.1", "."], folder)
    change_one_line(folder)
    again, _ = timed(["docker", "build", "-t", f"{name}:0.0.1", "."], folder)
    return {"first_s": first, "rebuild_s": again}


def end_to_end(tmp: Path, name: str, url: str) -> float:
    folder = tmp / f"{name}-e2e"
    folder.mkdir()
    began = time.perf_counter()
    subprocess.run([*EXECUTOR, "init", "--runtime", "go", name], cwd=folder, check=True,
                   capture_output=True)  # fmt: skip
    subprocess.run([*EXECUTOR, "deploy", "--app", "bench", "--url", url], cwd=folder,
                   check=True, capture_output=True)  # fmt: skip
    request = urllib.request.Request(f"{url}/r/bench/{name}", data=b'{"name": "Bench"}')
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.read() == b"Hello Bench!\n"
    return time.perf_counter() - began


def run(args: argparse.Namespace) -> dict:
    runs: dict[str, list] = {"executor build": [], "docker build": [], "end to end": []}
    names: list[str] = []
    tmp = Path(tempfile.mkdtemp(prefix="executor-bench-workflow-"))
    try:
        with executor_server(EXECUTOR_ACCESS_LOG="false") as url:
            for _ in range(args.rounds):
                for kind in random.sample(list(runs), len(runs)):
                    name = f"bench-wf-{secrets.token_hex(3)}"
                    names.append(name)
                    if kind == "executor build":
                        runs[kind].append(executor_builds(tmp, name))
                    elif kind == "docker build":
                        runs[kind].append(docker_builds(tmp, name))
                    else:
                        runs[kind].append({"seconds": end_to_end(tmp, name, url)})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        for name in names:
            subprocess.run(["docker", "rmi", "-f", f"{name}:0.0.1", f"{name}:latest"],
                           capture_output=True, check=False)  # fmt: skip
    builds = {kind: {key: statistics.median(r[key] for r in runs[kind])
                     for key in ("first_s", "rebuild_s")}
              for kind in ("executor build", "docker build")}  # fmt: skip
    steps = runs["executor build"][len(runs["executor build"]) // 2]
    return {"builds": builds, "steps": {"first": steps["first_steps"],
            "rebuild": steps["rebuild_steps"]},
            "end_to_end_s": statistics.median(r["seconds"] for r in runs["end to end"]),
            "runs": runs}  # fmt: skip


def report(results: dict) -> str:
    b = results["builds"]
    rows = [["Go function", "executor build s", "docker build s", "ratio"]]
    for key, label in (("first_s", "first build"), ("rebuild_s", "rebuild, one line changed")):
        e, d = b["executor build"][key], b["docker build"][key]
        rows.append([label, f"{e:.2f}", f"{d:.2f}", f"{e / d:.2f}"])
    steps = [["step (executor build, median round)", "first s", "rebuild s"]]
    for step, seconds in results["steps"]["first"].items():
        steps.append([step, f"{seconds:.2f}", f"{results['steps']['rebuild'].get(step, 0):.2f}"])
    e2e = f"init + deploy + first call, end to end: {results['end_to_end_s']:.2f} s (median)"
    return "\n".join([table(rows), "", table(steps), "", e2e])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each")
    args = common.arguments(parser)
    if args.quick:
        args.rounds = 1
    results = run(args)
    common.publish("workflow", args, report(results), results=results)


if __name__ == "__main__":
    main()
