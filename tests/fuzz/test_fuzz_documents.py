"""Result documents: generated JSON (a real document mutated, other schema versions, any JSON,
JSON cut short) read as results.json or as an exported list give a document or a one-line
ConfigError."""

from __future__ import annotations

import json

from hypothesis import given

from support.fuzzing import ACCEPTED, REJECTED, base_document, check_document, documents


@given(documents())
def test_generated_documents(data: bytes) -> None:
    assert check_document(data) in (ACCEPTED, REJECTED)


def test_known_answers() -> None:
    assert check_document(json.dumps(base_document()).encode()) == ACCEPTED
    for version in ("2.0", "0.1", "x", "1.7.1"):
        assert (
            check_document(json.dumps({**base_document(), "schema_version": version}).encode())
            == REJECTED
        )
    # a newer minor version is read when its fields are all known here, refused when not
    assert (
        check_document(json.dumps({**base_document(), "schema_version": "1.999"}).encode())
        == ACCEPTED
    )
    newer = {**base_document(), "schema_version": "1.999", "a_new_field": 1}
    assert check_document(json.dumps(newer).encode()) == REJECTED
    assert check_document(b"[" * 100_000) == REJECTED
    assert check_document(b"\xff") == REJECTED
