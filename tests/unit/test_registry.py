import pytest

from voxbench.errors import ConfigError
from voxbench.registry import EngineSpec, describe, known_engines


def test_builtins_are_registered():
    assert {"espeak", "piper", "fluidsynth"} <= set(known_engines())


def test_module_factory_reference_builds_with_params():
    engine = EngineSpec("voxbench.engines.calibration:SleepEngine", {"call_ms": 7}).create()
    assert engine.call_ms == 7.0


@pytest.mark.parametrize(
    "ref,msg",
    [
        ("no-such-engine", "unknown engine 'no-such-engine'"),
        ("no_such_module:Thing", "cannot import engine module"),
        ("voxbench.engines.calibration:Nope", "has no attribute"),
    ],
)
def test_bad_references_are_one_line_config_errors(ref, msg):
    with pytest.raises(ConfigError, match=msg) as err:
        EngineSpec(ref).create()
    assert "\n" not in str(err.value)


def test_bad_params_are_reported():
    with pytest.raises(ConfigError, match="rejected its parameters"):
        EngineSpec("voxbench.engines.calibration:SleepEngine", {"bogus": 1}).create()


def test_describe_unknown_engine_is_unavailable_not_an_exception():
    row = describe("nope:Nothing")
    assert row["available"] is False and "cannot import" in row["reason"]
