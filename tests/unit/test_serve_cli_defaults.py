"""`voxbench serve`'s limit options default to the limits the server declares (written twice, since
the CLI must not import starlette at start-up: this test keeps the two equal)."""

from __future__ import annotations

import inspect

from voxbench.cli.load import serve
from voxbench.load.serve_checks import MIB, Limits


def test_cli_defaults_are_the_servers() -> None:
    p = {name: param.default for name, param in inspect.signature(serve).parameters.items()}
    assert (
        Limits(
            max_json_bytes=int(p["max_body_mb"] * MIB),
            max_upload_bytes=int(p["max_upload_mb"] * MIB),
            max_text_chars=p["max_text_chars"],
            header_timeout_s=p["header_timeout"],
            body_timeout_s=p["body_timeout"],
        )
        == Limits()
    )
