import pytest

from voxbench.errors import ConfigError
from voxbench.run.config import load_config


def test_valid_config(tmp_path):
    f = tmp_path / "voxbench.toml"
    f.write_text(
        'iterations = 5\nworkloads = ["short"]\n[params]\nlength_scale = [0.8, 1.2]\n'
        '[[engine]]\nref = "piper"\nargs = { noise_scale = 0.5 }\nparams = { steps = 4 }\n'
    )
    cfg, raw = load_config(f)
    assert cfg.iterations == 5 and cfg.params == {"length_scale": [0.8, 1.2]}
    assert cfg.engine[0].args == {"noise_scale": 0.5} and cfg.engine[0].params == {"steps": [4]}
    assert raw["engine"][0]["ref"] == "piper"


@pytest.mark.parametrize(
    "text,msg",
    [
        ("iterations = 0", "iterations: Input should be greater than or equal to 1"),
        ("itterations = 3", "itterations: unknown key (this table takes: engine, workloads,"),
        ("[[engine]]\nargs = {}", "engine.0.ref: Field required"),
        ("mode = 'gpu'", "mode: Input should be 'worker' or 'in-process'"),
        ("iterations = [", "not valid TOML"),
    ],
)
def test_invalid_configs_are_one_line(tmp_path, text, msg):
    f = tmp_path / "v.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=msg.replace("(", r"\(").replace(")", r"\)")) as err:
        load_config(f)
    assert "\n" not in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
