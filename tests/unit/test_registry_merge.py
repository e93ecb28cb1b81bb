from executor.registry import _merge


def test_patch_merges_maps_and_removes_empty_keys():
    current = {"memory": 128, "config": {"A": "1", "B": "2"}, "headers": {"X": ["y"]}}
    patch = {"memory": 256, "config": {"B": "", "C": "3"}, "headers": {"X": []}}
    assert _merge(current, patch) == {"memory": 256, "config": {"A": "1", "C": "3"}, "headers": {}}


def test_null_resets_a_field_to_its_default():
    assert _merge({"memory": 256, "cpus": 1.0}, {"cpus": None}) == {"memory": 256}
