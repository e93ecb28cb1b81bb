"""The routes file's parsing and checks (no Docker, no store)."""

from __future__ import annotations

from pathlib import Path

import pytest

from executor.config import Settings
from executor.errors import BadSetting
from executor.routes_file import parse, read

SETTINGS = Settings()


def test_yaml_and_json_read_the_same(tmp_path: Path):
    (tmp_path / "r.yaml").write_text(
        "apps:\n"
        "  - name: demo\n"
        "    config: {GREETING: hi}\n"
        "    routes:\n"
        "      - {path: /hello, image: executor/hello}\n"
        "      - path: /hot\n"
        "        image: executor/hello-stream\n"
        "        format: http-stream\n"
        "  - name: empty\n"
    )
    (tmp_path / "r.json").write_text(
        '{"apps": [{"name": "demo", "config": {"GREETING": "hi"}, "routes": ['
        '{"path": "/hello", "image": "executor/hello"},'
        '{"path": "/hot", "image": "executor/hello-stream", "format": "http-stream"}]},'
        '{"name": "empty"}]}'
    )
    from_yaml = read(tmp_path / "r.yaml", SETTINGS)
    assert from_yaml == read(tmp_path / "r.json", SETTINGS)
    demo, empty = from_yaml
    assert demo.spec.name == "demo" and demo.spec.config == {"GREETING": "hi"}
    assert [(r.path, r.format, r.min_warm) for r in demo.routes] == [
        ("/hello", "default", 0),
        ("/hot", "http-stream", 1),  # the format's default, as through the API
    ]
    assert empty.routes == []


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], 'top level: expected a mapping with one key, "apps"'),
        ({"apps": [], "extra": 1}, 'top level: expected a mapping with one key, "apps"'),
        ({"apps": {"demo": {}}}, "apps: expected a list"),
        ({"apps": ["demo"]}, "apps[0]: expected a mapping"),
        ({"apps": [{"name": "a b"}]}, "apps[0]: app.name"),
        ({"apps": [{"name": "a", "routes": {}}]}, "apps[0].routes: expected a list"),
        ({"apps": [{"name": "a"}, {"name": "a"}]}, "apps[1]: app 'a' is declared twice"),
        (
            {"apps": [{"name": "a", "routes": [{"path": "/x", "image": "i", "memory": 2}]}]},
            "apps[0].routes[0]: route.memory: must be between 8 and 8192",
        ),
        (
            {"apps": [{"name": "a", "routes": [{"path": "/x", "image": "i", "colour": 1}]}]},
            "apps[0].routes[0]: route: unknown field(s): colour",
        ),
        (
            {"apps": [{"name": "a", "routes": [{"path": "/x", "image": "i"}] * 2}]},
            "apps[0].routes: declared twice: /x",
        ),
    ],
)
def test_a_bad_file_names_the_place_of_its_error(document, message):
    with pytest.raises(BadSetting) as raised:
        parse(document, "routes.yaml", SETTINGS)
    assert str(raised.value).startswith("routes file 'routes.yaml': ")
    assert message in str(raised.value)


def test_a_missing_or_unreadable_file_is_a_clear_error(tmp_path: Path):
    with pytest.raises(BadSetting, match="No such file"):
        read(tmp_path / "missing.yaml", SETTINGS)
    (tmp_path / "bad.yaml").write_text("apps: [\n")
    with pytest.raises(BadSetting, match="not YAML or JSON"):
        read(tmp_path / "bad.yaml", SETTINGS)
