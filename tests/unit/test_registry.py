import pytest

from voxbench.engines.registry import EngineSpec, describe, known_engines
from voxbench.errors import ConfigError


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


def test_engines_from_installed_entry_points(tmp_path, monkeypatch):
    """A package that declares a voxbench.engines entry point is found by name."""
    dist = tmp_path / "my_engines-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-engines\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[voxbench.engines]\nmy-sleep = voxbench.engines.calibration:SleepEngine\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert known_engines()["my-sleep"] == "voxbench.engines.calibration:SleepEngine"
    assert EngineSpec("my-sleep", {"call_ms": 3}).create().call_ms == 3.0


def test_credentials_in_urls_are_redacted_from_names():
    from voxbench.engines.registry import redact

    url = "https://user:s3cret@tts.example.test:8443/v1/audio/speech"
    assert redact(url) == "https://***@tts.example.test:8443/v1/audio/speech"
    assert (
        redact(f"--engine {url} -n 3")
        == "--engine https://***@tts.example.test:8443/v1/audio/speech -n 3"
    )
    assert EngineSpec(url).name == "http:tts.example.test:8443"
    assert EngineSpec("cmd:/usr/bin/espeak-ng -w {out} {text}").name == "cmd:espeak-ng"
