"""The ledger URL is secret-bearing: its password is masked wherever it is shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from billsync.config.loader import load_settings
from billsync.core.logs import SecretScrubber
from billsync.sync.ledger.database import (
    LedgerConfigError,
    describe_url,
    ledger_unreachable,
    normalize_url,
)

PASSWORD = "p@ss:w/rd-42"
URL = "postgresql://bill:p%40ss%3Aw%2Frd-42@db.example:5433/billsync"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (URL, "postgresql://bill:***@db.example:5433/billsync"),
        ("postgresql://bill@h/db?password=s3cret", "postgresql://bill@h/db?password=***"),
        ("sqlite:///./billsync.db", "sqlite:///./billsync.db"),
        ("not a url: hunter2hunter2", "(not a database URL)"),
    ],
)
def test_describe_url_masks_the_password(url: str, shown: str) -> None:
    assert describe_url(url) == shown


def test_an_unparseable_url_is_refused_without_its_value() -> None:
    with pytest.raises(LedgerConfigError) as caught:
        normalize_url("not a url: hunter2hunter2")
    assert "hunter2" not in str(caught.value)


def test_settings_count_the_url_password_as_a_secret(tmp_path: Path) -> None:
    url_file = tmp_path / "url"
    url_file.write_text(URL + "\n", encoding="utf-8")
    settings = load_settings(None, {"BILLSYNC_LEDGER__URL_FILE": str(url_file)})
    assert settings.ledger.url == URL
    assert PASSWORD in settings.secret_values()
    scrubbed = SecretScrubber(settings.secret_values()).scrub(f"opening {URL} ({PASSWORD})")
    assert PASSWORD not in scrubbed and "p%40ss" not in scrubbed


def test_the_scrubber_masks_any_url_password() -> None:
    text = SecretScrubber().scrub("could not open postgresql+psycopg://u:Zx81-secret@h/db")
    assert "Zx81" not in text and "postgresql+psycopg://u:[REDACTED]@h/db" in text


def test_an_unreachable_ledger_names_the_host() -> None:
    refused = OperationalError("connect", {}, Exception("connection refused"))
    said = ledger_unreachable("postgresql://bill:hunter2@db.example:6543/x", refused)
    assert said is not None and "db.example:6543" in said and "hunter2" not in said
    assert ledger_unreachable(URL, ValueError("other")) is None
