"""engines/footprint.py: model file sizes and installed package sizes, against known answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxbench.engines.footprint import MIB, distribution_bytes, footprint


def _write(path: Path, size: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    return path


def _fake_distribution(root: Path, name: str) -> int:
    """An installed distribution on ``root``: two files with sizes in RECORD, RECORD itself
    without one (so its own size is read), and a listed file that is absent. Its known size."""
    package = name.replace("-", "_")
    info = root / f"{package}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    _write(root / package / "__init__.py", 3 * MIB)
    _write(root / package / "data.bin", MIB // 2)
    record = (
        f"{package}/__init__.py,sha256=abc,{3 * MIB}\n"
        f"{package}/data.bin,sha256=def,{MIB // 2}\n"
        f"{package}/gone.py,,\n"
        f"{package}-1.0.dist-info/RECORD,,\n"
    )
    (info / "RECORD").write_text(record)
    return 3 * MIB + MIB // 2 + len(record.encode())


def test_model_files_and_a_known_distribution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    expected = _fake_distribution(site, "vox-footprint-demo")
    monkeypatch.syspath_prepend(str(site))
    model = _write(tmp_path / "model.onnx", 5 * MIB)
    config = _write(tmp_path / "model.json", MIB // 4)

    result = footprint(
        ["vox-footprint-demo", "no-such-distribution-xyz"], [model, config, tmp_path / "absent.bin"]
    )

    assert distribution_bytes("vox-footprint-demo") == expected
    assert result["model_files"] == {str(model): 5.0, str(config): 0.25}
    assert result["model_mib"] == 5.25
    assert result["packages"] == {"vox-footprint-demo": round(expected / MIB, 3)}
    assert result["packages_mib"] == round(expected / MIB, 3)
    assert result["missing"] == [str(tmp_path / "absent.bin"), "no-such-distribution-xyz"]


def test_a_model_folder_counts_the_files_under_it(tmp_path: Path) -> None:
    folder = tmp_path / "ct2-model"
    _write(folder / "model.bin", 2 * MIB)
    _write(folder / "sub" / "vocabulary.json", MIB // 2)
    (folder / "link.bin").symlink_to(folder / "model.bin")  # not counted twice
    assert footprint([], [folder])["model_files"] == {str(folder): 2.5}


def test_cached_per_process_and_callers_get_a_copy(tmp_path: Path) -> None:
    model = _write(tmp_path / "m.bin", MIB)
    first = footprint([], [model])
    first["model_files"]["other"] = 1.0
    model.write_bytes(b"x" * (2 * MIB))  # the cache answers: a process's footprint is fixed
    again = footprint([], [model])
    assert again["model_files"] == {str(model): 1.0}
    assert again["packages_mib"] == 0.0


def test_a_real_installed_distribution_matches_its_record() -> None:
    # numpy's RECORD lists every file with its size: the sum is the known answer.
    from importlib import metadata

    dist = metadata.distribution("numpy")
    recorded = sum(int(f.size or 0) for f in dist.files or [])
    size = distribution_bytes("numpy")
    assert size is not None and size >= recorded > 1_000_000
