"""Requests are built and validated by the library: defaults < voxbench.toml < options."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxbench.errors import ConfigError
from voxbench.load.run import LoadRequest
from voxbench.load.schedule import Level
from voxbench.run.request import RunOptions, RunRequest
from voxbench.run.scenario import Settings


def test_defaults_are_the_settings_defaults():
    request = RunRequest.from_sources(None)
    assert request.settings == Settings()
    assert request.engines is None and request.workloads is None
    assert request.devices == ["cpu"] and request.batch_sizes == [1]
    assert request.output == Path("results")
    assert request.calls_per_case == 1 + Settings().warmup + Settings().iterations


def test_options_override_the_file_which_overrides_the_defaults(tmp_path):
    config = tmp_path / "voxbench.toml"
    config.write_text(
        'iterations = 7\nwarmup = 2\ntimeout = 5\nworkloads = ["medium"]\n'
        "[params]\nspeed = [1, 2]\n"
        '[[engine]]\nref = "espeak"\nargs = { voice = "en" }\n'
    )
    request = RunRequest.from_sources(
        config,
        RunOptions(iterations=3, engine_args=["pitch=40"], params=["rate=1,2"], argv=["run"]),
    )
    assert request.settings.iterations == 3  # the option
    assert request.settings.warmup == 2  # the file
    assert request.settings.timeout_s == 5.0
    assert request.settings.mode == "worker"  # the default
    assert request.workloads == ["medium"]
    assert [(e.ref, e.args) for e in request.engines or []] == [
        ("espeak", {"voice": "en", "pitch": 40})
    ]
    assert request.sweep == {"speed": [1, 2], "rate": [1, 2]}
    assert request.config_file is not None and request.config_file["iterations"] == 7


def test_fault_limits_from_the_file_and_the_command_line(tmp_path):
    cfg = tmp_path / "voxbench.toml"
    cfg.write_text('case_timeout = 60\nmax_memory = "2G"\n')
    request = RunRequest.from_sources(cfg)
    assert (request.settings.case_timeout_s, request.settings.max_memory) == (60.0, "2G")
    request = RunRequest.from_sources(cfg, RunOptions(case_timeout_s=5, max_memory="500M"))
    assert (request.settings.case_timeout_s, request.settings.max_memory) == (5.0, "500M")
    cfg.write_text('max_memory = "lots"\n')
    with pytest.raises(ConfigError, match="--max-memory: give a size such as 500M or 2G"):
        RunRequest.from_sources(cfg)


def test_engine_references_keep_commands_and_urls_whole():
    request = RunRequest.from_sources(
        None, RunOptions(engines=["espeak,piper", "cmd:sox -n a,b", "http://h/x?a=1,2"])
    )
    assert [e.ref for e in request.engines or []] == [
        "espeak",
        "piper",
        "cmd:sox -n a,b",
        "http://h/x?a=1,2",
    ]


def test_timeout_zero_means_none_and_devices_are_normalised():
    request = RunRequest.from_sources(None, RunOptions(timeout_s=0, devices="CPU,cpu,cuda:1"))
    assert request.settings.timeout_s is None
    assert request.devices == ["cpu", "cuda:1"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (RunOptions(iterations=0), "--iterations must be at least 1"),
        (RunOptions(warmup=-1), "--warmup cannot be negative"),
        (RunOptions(timeout_s=-1), "--timeout cannot be negative"),
        (RunOptions(batch_sizes="1,0"), "--batch-size values must be at least 1"),
        (RunOptions(devices="tpu"), "unknown device 'tpu'"),
        (RunOptions(engine_args=["a=1"]), "--engine-arg needs --engine"),
    ],
)
def test_bad_run_options_are_one_line_errors(options, message):
    with pytest.raises(ConfigError, match=message):
        RunRequest.from_sources(None, options)


def test_a_request_built_by_hand_is_checked_too():
    request = RunRequest(settings=Settings(iterations=0))
    with pytest.raises(ConfigError, match="--iterations"):
        request.validate()


def test_load_request_from_text():
    request = LoadRequest.from_text(
        "http://127.0.0.1:1/v1/audio/speech", rate="1,2.5", duration="2m", warmup="500ms"
    )
    assert request.levels == [Level("rate", 1.0), Level("rate", 2.5)]
    assert request.duration_s == 120.0 and request.warmup_s == 0.5
    by_count = LoadRequest.from_text("http://h/x", concurrency="4", requests=10)
    assert by_count.levels == [Level("concurrency", 4)] and by_count.duration_s is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": "ftp://h/x", "rate": "1"}, "must be an http"),
        ({"target": "http://h/x"}, "exactly one of --rate or --concurrency"),
        ({"target": "http://h/x", "rate": "1", "concurrency": "2"}, "exactly one of"),
        ({"target": "http://h/x", "rate": "0"}, "load levels must be above 0"),
        ({"target": "http://h/x", "rate": "1", "arrivals": "bursty"}, "--arrivals"),
        ({"target": "http://h/x", "rate": "1", "response_format": "mp3"}, "wav or pcm"),
        ({"target": "http://h/x", "rate": "1", "slo": "ttfa<3"}, "SLO clause"),
        ({"target": "http://h/x", "rate": "1", "timeout_s": 0}, "--timeout must be above 0"),
        ({"target": "http://h/x", "rate": "1", "duration": "0s"}, "--duration must be above 0"),
    ],
)
def test_bad_load_requests_are_one_line_errors(kwargs, message):
    target = kwargs.pop("target")
    with pytest.raises(ConfigError, match=message):
        LoadRequest.from_text(target, **kwargs)


def test_a_load_request_built_by_hand_validates_itself():
    with pytest.raises(ConfigError, match="load levels must be above 0"):
        LoadRequest(target="http://h/x", levels=[Level("rate", -1)])
