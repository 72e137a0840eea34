import json

import pytest

from voxbench.errors import ConfigError
from voxbench.workloads import builtin_workloads, resolve_workload


def test_builtin_text_corpus_lengths_grow():
    short, medium, long = (resolve_workload(n) for n in ("short", "medium", "long"))
    assert all(w.kind == "text" and len(w.items) >= 2 for w in (short, medium, long))
    mean = lambda w: sum(i.chars for i in w.items) / len(w.items)  # noqa: E731
    assert mean(short) < mean(medium) < mean(long)
    assert {"short", "medium", "long", "piano"} <= set(builtin_workloads())


def test_txt_one_input_per_line_skips_blank_lines(tmp_path):
    f = tmp_path / "mine.txt"
    f.write_text("Hello there.\n\n  Second line.  \n", encoding="utf-8")
    w = resolve_workload(str(f))
    assert [i.text for i in w.items] == ["Hello there.", "Second line."]
    assert [i.id for i in w.items] == ["mine-1", "mine-2"]


def test_empty_corpus_file_is_a_one_line_error(tmp_path):
    f = tmp_path / "empty.txt"
    f.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(ConfigError, match="has no inputs"):
        resolve_workload(str(f))


def test_jsonl_ids_and_meta(tmp_path):
    f = tmp_path / "c.jsonl"
    f.write_text(
        json.dumps({"id": "a", "text": "One.", "lang": "en"})
        + "\n"
        + json.dumps({"text": "Two."})
        + "\n",
        encoding="utf-8",
    )
    w = resolve_workload(str(f))
    assert [(i.id, i.text) for i in w.items] == [("a", "One."), ("c-2", "Two.")]
    assert w.items[0].meta == {"lang": "en"}


@pytest.mark.parametrize("line,msg", [("{not json", "not valid JSON"), ('{"txt": 1}', '"text"')])
def test_bad_jsonl_names_the_line(tmp_path, line, msg):
    f = tmp_path / "bad.jsonl"
    f.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=msg) as err:
        resolve_workload(str(f))
    assert "bad.jsonl:1" in str(err.value)


def test_unknown_workload_lists_the_built_ins():
    with pytest.raises(ConfigError, match=r"unknown workload .nope.*short"):
        resolve_workload("nope")


def test_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_workload(str(tmp_path / "gone.txt"))
    odd = tmp_path / "x.csv"
    odd.write_text("a\n")
    with pytest.raises(ConfigError, match="cannot read workload"):
        resolve_workload(str(odd))


def test_folder_of_midi_files(tmp_path):
    from voxbench.workloads.midi import write_piece

    write_piece(tmp_path / "b.mid", 2.0, "simple", seed=1)
    write_piece(tmp_path / "a.mid", 2.0, "chords", seed=2)
    (tmp_path / "notes.txt").write_text("ignored\n")
    w = resolve_workload(str(tmp_path))
    assert w.kind == "midi"
    assert [i.id for i in w.items] == ["a", "b"]
    assert all(i.payload().suffix == ".mid" for i in w.items)
