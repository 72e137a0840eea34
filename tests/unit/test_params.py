import pytest

from voxbench.errors import ConfigError
from voxbench.run.params import combinations, parse_args, parse_list, parse_sweep, parse_value


@pytest.mark.parametrize(
    "text,value",
    [
        ("3", 3),
        ("0.8", 0.8),
        ("true", True),
        ("False", False),
        ("none", None),
        ("en-us", "en-us"),
        ("1e-3", 0.001),
    ],
)
def test_values_are_typed(text, value):
    assert parse_value(text) == value and type(parse_value(text)) is type(value)


def test_sweep_crosses_every_value():
    sweep = parse_sweep(["steps=2,5,16", "preset=fast,quality", "steps=5"])
    assert sweep == {"steps": [2, 5, 16], "preset": ["fast", "quality"]}
    combos = combinations(sweep)
    assert len(combos) == 6 and {"steps": 16, "preset": "quality"} in combos
    assert combinations({}) == [{}]


def test_engine_args_keep_commas():
    assert parse_args(["providers=CUDA,CPU", "voice=en"]) == {
        "providers": "CUDA,CPU",
        "voice": "en",
    }


@pytest.mark.parametrize("bad", ["novalue", "=3"])
def test_malformed_pairs(bad):
    with pytest.raises(ConfigError, match="name=value"):
        parse_sweep([bad])


def test_lists():
    assert parse_list("cpu, cuda:1", "--device") == ["cpu", "cuda:1"]
    assert parse_list("1,4", "--batch-size", int) == [1, 4]
    with pytest.raises(ConfigError, match="not a valid value"):
        parse_list("1,x", "--batch-size", int)
