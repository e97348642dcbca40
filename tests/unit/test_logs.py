"""Logs are JSON lines by default and never carry a secret."""

from __future__ import annotations

import io
import json
import logging

import pytest

from billsync.core.logs import REDACTED, SecretScrubber, configure_logging, get_logger
from billsync.core.plugins import installed_secret_patterns


@pytest.mark.parametrize(
    "text",
    [
        "key sk_live_4eC39HqLyjWDarjtT1zdp7dc failed",
        "rk_test_abcdefghijklmnop",
        "secret whsec_abcdefABCDEF123456",
        "Authorization: Bearer 00Dxx0000001gPL!AR8AQJXg5oj8jXSgxJfA0lBog",
        "assertion eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJl",
        "refresh_token=AB11700000000abcdefghijklmnopqrstuvwxyz0123",
        '{"access_token": "abc.def.ghi-jkl"}',
        "password=hunter2hunter2",
    ],
)
def test_credential_shapes_are_redacted(text: str) -> None:
    scrubbed = SecretScrubber(patterns=installed_secret_patterns()).scrub(text)
    assert REDACTED in scrubbed
    for token in (
        "4eC39Hq",
        "abcdefghijklmnop",
        "abcdefABCDEF",
        "AR8AQJ",
        "c2lnbmF0dXJl",
        "AB11700000000",
        "abc.def.ghi",
        "hunter2",
    ):
        assert token not in scrubbed


def test_configured_secret_values_are_redacted_everywhere() -> None:
    scrubber = SecretScrubber(["my-plain-secret"])
    event = {"event": "x my-plain-secret y", "nested": {"list": ["my-plain-secret"]}}
    out = scrubber(None, "info", event)
    assert "my-plain-secret" not in json.dumps(out)


def test_json_lines_and_stdlib_bridge_are_scrubbed() -> None:
    stream = io.StringIO()
    configure_logging(log_format="json", secrets=["distinct-secret-1234"], stream=stream)
    get_logger("t").info("calling", token="distinct-secret-1234", deal_id="006A")
    logging.getLogger("vendor").warning("echo distinct-secret-1234 back")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["event"] == "calling" and lines[0]["deal_id"] == "006A"
    assert lines[0]["level"] == "info" and "timestamp" in lines[0]
    assert "distinct-secret-1234" not in stream.getvalue()
    assert any("echo" in line["event"] for line in lines)


def test_exception_text_is_scrubbed() -> None:
    stream = io.StringIO()
    configure_logging(log_format="json", secrets=["exc-secret-9876"], stream=stream)
    try:
        raise RuntimeError("token exc-secret-9876 rejected")
    except RuntimeError:
        get_logger().exception("failed")
    assert "exc-secret-9876" not in stream.getvalue()
    assert "RuntimeError" in stream.getvalue()
