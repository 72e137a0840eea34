"""Config files: generated TOML text, generated tables and raw bytes as ``voxbench.toml`` give a
RunRequest or a one-line ConfigError, never another exception."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from support.fuzzing import (
    ACCEPTED,
    REJECTED,
    check_config,
    config_tables,
    config_texts,
    toml_document,
)


@given(config_texts)
def test_generated_toml_text(text: str) -> None:
    assert check_config(text.encode("utf-8", "surrogatepass")) in (ACCEPTED, REJECTED)


@given(config_tables)
def test_generated_tables(table: dict) -> None:
    assert check_config(toml_document(table).encode("utf-8", "surrogatepass")) in (
        ACCEPTED,
        REJECTED,
    )


@given(st.binary(max_size=300))
def test_raw_bytes(data: bytes) -> None:
    assert check_config(data) in (ACCEPTED, REJECTED)


def test_known_answers() -> None:
    """The checks can tell the two apart: a good file is accepted, each bad one refused."""
    assert (
        check_config(b'iterations = 3\nworkloads = ["short"]\n[[engine]]\nref = "espeak"\n')
        == ACCEPTED
    )
    for bad in (
        b"iterations = 0",
        b"iterations = 'x'",
        b"colour = 1",
        b"\xff\xfe",
        b"a = [" * 3000,
        b'output = "a\\u0000b"',
        b"timeout = inf",
        b"[[engine]]\nref = 1",
    ):
        assert check_config(bad) == REJECTED, bad
