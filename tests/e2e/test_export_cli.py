"""voxbench export RUN --format bencher | github-action-benchmark, from the store or a folder."""

from __future__ import annotations

import json

import pytest

from support.cli import assert_one_line_error, voxbench
from voxbench.results.store import open_store

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stored(tmp_path_factory, real_doc):  # type: ignore[no-untyped-def]
    url = str(tmp_path_factory.mktemp("export") / "store.sqlite")
    with open_store(url) as s:
        s.add(real_doc)
    return url


def test_bencher_and_github_action_benchmark(stored, real_doc, tmp_path):
    out = tmp_path / "bmf.json"
    proc = voxbench("export", real_doc.run_id, "-f", "bencher", "-o", str(out), "--store", stored)
    assert proc.returncode == 0, proc.stderr
    bmf = json.loads(out.read_text())
    assert set(bmf) == {c.id for c in real_doc.cases}
    lat = bmf[real_doc.cases[0].id]["latency"]
    assert lat["value"] == pytest.approx(real_doc.cases[0].latency_ms.median * 1e6)
    proc = voxbench("export", "latest", "-f", "github-action-benchmark", "--store", stored)
    assert proc.returncode == 0, proc.stderr
    entries = json.loads(proc.stdout)
    assert entries[0]["name"] == f"{real_doc.cases[0].id} latency" and entries[0]["unit"] == "ms"


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["latest", "-f", "nope"], ["unknown --format 'nope'"]),
        (["zzz"], ["no run 'zzz'"]),
        (["latest", "-o", "/no/such/dir/x.json"], ["folder /no/such/dir does not exist"]),
    ],
)
def test_bad_input_is_one_line(stored, args, needles):
    proc = voxbench("export", *args, "--store", stored)
    assert proc.returncode == 2
    assert_one_line_error(proc, *needles)
