"""The options ``--executor ray`` shares across ``run``, ``micro``, ``pipeline`` and ``load``
(run/request.py: RayOptions.parse, parse_runtime_env), and the load report's per-worker table
(report/load.py: workers_sections). Pure: no Ray is started here."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxbench.errors import ConfigError
from voxbench.report.load import load_sections, workers_sections
from voxbench.results.document import LoadLevel, LoadResult, LoadWorker, Percentiles
from voxbench.run.request import RayOptions, parse_runtime_env, runtime_env_record


def test_runtime_env_inline_and_from_a_file(tmp_path: Path) -> None:
    inline = '{"env_vars": {"OMP_NUM_THREADS": "1"}, "pip": ["voxbench[ray]"]}'
    expected = {"env_vars": {"OMP_NUM_THREADS": "1"}, "pip": ["voxbench[ray]"]}
    assert parse_runtime_env(inline) == expected
    path = tmp_path / "env.json"
    path.write_text(inline)
    assert parse_runtime_env(str(path)) == expected
    assert parse_runtime_env(None) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '{"pip": [}',
            "--ray-runtime-env: not JSON (Expecting value at line 1 column 10); "
            'e.g. \'{"env_vars": {"OMP_NUM_THREADS": "1"}}\'',
        ),
        (
            "/no/such/env.json",
            "--ray-runtime-env: give inline JSON or a JSON file; cannot read "
            "/no/such/env.json: No such file or directory",
        ),
    ],
)
def test_a_bad_runtime_env_is_one_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_runtime_env(text)
    assert str(err.value) == message


def test_a_runtime_env_must_be_an_object(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    with pytest.raises(ConfigError) as err:
        parse_runtime_env(str(path))
    assert str(err.value) == "--ray-runtime-env: give a JSON object (Ray's runtime_env), not list"


def test_ray_options_parse_and_need_the_ray_executor() -> None:
    opts = RayOptions.parse(
        "ray", address="auto", retries=3, resources='{"GPU": 1}', runtime_env='{"pip": []}'
    )
    assert opts == RayOptions(
        address="auto", retries=3, resources={"GPU": 1.0}, runtime_env={"pip": []}
    )
    assert RayOptions.parse(None) == RayOptions()
    with pytest.raises(ConfigError) as err:
        RayOptions.parse(None, runtime_env="{}")
    assert str(err.value) == "--ray-runtime-env needs --executor ray"
    with pytest.raises(ConfigError) as err:
        RayOptions.parse("ray", retries=-1)
    assert str(err.value) == "--ray-retries cannot be negative"


def test_the_document_keeps_no_env_var_values() -> None:
    env = {"env_vars": {"HF_TOKEN": "secret"}, "pip": ["x"]}
    assert runtime_env_record(env) == {"env_vars": {"HF_TOKEN": "***"}, "pip": ["x"]}
    assert env["env_vars"] == {"HF_TOKEN": "secret"}


def _level(label: str, workers: list[LoadWorker]) -> LoadLevel:
    return LoadLevel(label=label, kind="rate", value=20.0, workers=workers)


def test_a_ray_level_shows_each_worker_under_the_levels() -> None:
    kept = LoadWorker(
        worker=0, node="10.0.0.1", requests=1200, scheduled_rate=10.0, sent_rate=10.02,
        lag_ms=Percentiles(n=1200, p99=1.25), start_margin_ms=980.4,
    )  # fmt: skip
    behind = LoadWorker(
        worker=1, node="10.0.0.2", requests=1190, scheduled_rate=10.0, sent_rate=8.5,
        lag_ms=Percentiles(n=1190, p99=240.0), start_margin_ms=-3.0, saturated=True,
        reasons=["schedule lag p99 240 ms > 50 ms"],
    )  # fmt: skip
    load = LoadResult(
        target="http://127.0.0.1:1/v1/audio/speech",
        settings={},
        levels=[_level("20/s", [kept, behind]), _level("40/s", [])],
    )
    [section] = workers_sections(load)
    assert section.title == "Load workers, level 20/s"
    assert section.rows == [
        ["0", "10.0.0.1", "1,200", "10.00", "10.02", "1.25", "980", "no"],
        ["1", "10.0.0.2", "1,190", "10.00", "8.50", "240.0", "-3.0", "schedule lag p99 240 ms > 50 ms"],
    ]  # fmt: skip
    titles = [s.title for s in load_sections(load)]
    assert titles[titles.index("Load levels") + 1] == "Load workers, level 20/s"


def test_a_level_from_one_generator_has_no_worker_table() -> None:
    load = LoadResult(
        target="http://127.0.0.1:1/v1/audio/speech", settings={}, levels=[_level("1/s", [])]
    )
    assert workers_sections(load) == []
    assert not any(s.title.startswith("Load workers") for s in load_sections(load))


def test_the_document_keeps_ray_options_without_their_secrets() -> None:
    opts = RayOptions(
        address="ray://user:s3cret@head:10001",
        retries=2,
        resources={"gpu_type:H100": 1.0},
        runtime_env={"env_vars": {"HF_TOKEN": "hf_s3cret"}, "pip": ["voxbench[ray]"]},
    )
    rec = opts.record()
    assert "s3cret" not in str(rec)
    assert rec["runtime_env"] == {"env_vars": {"HF_TOKEN": "***"}, "pip": ["voxbench[ray]"]}
    with pytest.raises(ConfigError, match="recorded its --ray-address hidden"):
        RayOptions.from_record(rec)
    with pytest.raises(ConfigError, match="recorded its env_vars hidden"):
        RayOptions.from_record({**rec, "address": "ray://head:10001"})
    plain = RayOptions(retries=3, resources={"CPU": 2.0}, runtime_env={"pip": ["numpy"]})
    assert RayOptions.from_record(plain.record()) == plain
    assert RayOptions.from_record(None) == RayOptions()
