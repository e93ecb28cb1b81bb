"""func.yaml read and checked (executor/funcfile.py), the runtimes' Dockerfiles and
guesses (executor/runtimes.py), and `executor init`'s folder (workflow.init)."""

from __future__ import annotations

from pathlib import Path

import pytest

from executor import funcfile, runtimes, workflow
from executor.funcfile import FuncFileError


def write(tmp_path: Path, text: str) -> Path:
    file = tmp_path / "func.yaml"
    file.write_text(text)
    return file


def test_ironfunctions_fields_and_the_executors_own_make_the_route(tmp_path: Path):
    ff = funcfile.load(write(tmp_path, """\
name: myuser/hello
version: 1.2.3
runtime: go
type: sync
memory: 64
format: http-stream
timeout: 10
idle_timeout: 60
headers: {X-A: v}
config: {GREETING: hi}
max_concurrency: 4
min_warm: 2
cpus: 0.5
tests:
  - {name: one, in: {"name": "A"}, out: Hello A!, env: {X: 1}}
"""))  # fmt: skip
    assert ff.image == "myuser/hello:1.2.3" and ff.route_path == "/hello"
    payload = ff.route_payload()
    assert payload["path"] == "/hello" and payload["image"] == "myuser/hello:1.2.3"
    assert payload["max_concurrency"] == 4 and payload["min_warm"] == 2
    [test] = ff.tests
    assert (test.input, test.out, test.env) == ('{"name":"A"}', "Hello A!", {"X": "1"})


def test_path_overrides_the_route_path_the_name_gives(tmp_path: Path):
    ff = funcfile.load(write(tmp_path, "name: hello\npath: /greet/:who\n"))
    assert ff.route_path == "/greet/:who" and ff.version == "0.0.1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: a\nversion: 0.0.1\nmemory: 1\n", "func.yaml:3: memory: must be"),
        ("name: a\n\ncolour: red\n", "func.yaml:3: colour: unknown field"),
        ("version: 0.0.1\n", "func.yaml:1: name: required"),
        ("name: Hello World\n", "func.yaml:1: name: required: an image name"),
        ("name: a\nversion: one\n", "func.yaml:2: version: 'one' is not a version"),
        ("name: a\nformat: hot\n", "func.yaml:2: format: Input should be"),
        ("name: a\nbuild: make\n", "func.yaml:2: build: must be a list"),
        ("name: a\ntests:\n  - {colour: 1}\n", "func.yaml:2: tests: tests[0].colour: unknown"),
        ("name: a\n  bad: [\n", "func.yaml:2: not YAML"),
        ("- a\n", "func.yaml:1: expected a mapping"),
    ],
)
def test_a_bad_func_yaml_names_its_line_and_field(tmp_path: Path, text: str, message: str):
    with pytest.raises(FuncFileError) as refused:
        funcfile.load(write(tmp_path, text))
    assert message in refused.value.message, refused.value.message


def test_bump_raises_the_patch_and_keeps_the_rest_of_the_file(tmp_path: Path):
    file = write(tmp_path, "# my function\nname: a\nversion: 0.1.9\nmemory: 64\n")
    assert funcfile.bump(file) == "0.1.10"
    assert file.read_text() == "# my function\nname: a\nversion: 0.1.10\nmemory: 64\n"


def test_the_runtime_is_guessed_from_the_source_file_as_ironfunctions_does():
    assert runtimes.guess({"func.py", "README"}).name == "python"
    assert runtimes.guess({"func.js"}).name == "node"
    assert runtimes.guess({"main.c"}) is None
    assert runtimes.runtime("golang").name == "go"
    with pytest.raises(ValueError, match="unknown runtime 'cobol'"):
        runtimes.runtime("cobol")


def test_each_runtime_dockerfile_takes_its_base_as_an_arg():
    for runtime in runtimes.RUNTIMES.values():
        text = runtime.dockerfile()
        assert f"ARG BASE={runtime.base}" in text and "FROM ${BASE}" in text
    go = runtimes.RUNTIMES["go"].dockerfile()
    assert "ARG BUILD=executor/go-build:latest" in go and 'ENTRYPOINT ["/func"]' in go
    custom = runtimes.RUNTIMES["node"].dockerfile(entrypoint="node app.js", cmd="--fast")
    assert 'ENTRYPOINT ["node", "app.js"]' in custom and 'CMD ["--fast"]' in custom


def test_init_writes_a_hello_in_an_empty_folder_and_keeps_existing_code(tmp_path: Path):
    written = workflow.init(tmp_path / "new", None, "node", "http-stream")
    assert [p.name for p in written] == ["func.yaml", "func.js"]
    assert "phony" in (tmp_path / "new" / "func.js").read_text()
    ff = funcfile.load(tmp_path / "new" / "func.yaml")
    assert (ff.name, ff.runtime, ff.route["format"]) == ("new", "node", "http-stream")

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "func.sh").write_text("echo mine\n")
    assert [p.name for p in workflow.init(mine, "x", None, "default")] == ["func.yaml"]
    assert (mine / "func.sh").read_text() == "echo mine\n"
    with pytest.raises(workflow.WorkflowError, match="exists already"):
        workflow.init(mine, "x", None, "default")


def test_init_refuses_a_format_the_runtimes_hello_does_not_speak(tmp_path: Path):
    with pytest.raises(workflow.WorkflowError, match="no 'http-stream' format"):
        workflow.init(tmp_path, "x", "shell", "http-stream")
