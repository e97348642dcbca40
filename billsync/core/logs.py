"""Structured logging: JSON lines to stdout, a console format for people, no secrets.

Every record — ours through structlog and third-party libraries' through the stdlib
`logging` bridge — passes the `SecretScrubber`, which replaces the configured secret
values and anything shaped like a vendor credential. Scrubbing happens at the last
moment before rendering so no call site has to remember it.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, Literal, TextIO

import structlog

REDACTED = "[REDACTED]"

# Shapes of credentials that must never reach a log even when nobody configured them
# as secrets (e.g. a token echoed back in a vendor error body). Each connector adds the
# shapes of its own credentials (`ConnectorSpec.secret_patterns`).
CREDENTIAL_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),  # JWTs
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    # The password of any URL's user part (a database URL in a driver's message).
    re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^\s:/@]*:)[^\s/@]+(?=@)"),
    re.compile(
        r"(?i)((?:access_token|refresh_token|client_secret|api_key|password|assertion)"
        r"[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,}]{4,}"
    ),
)


class SecretScrubber:
    """A structlog processor that removes secret values from every string in an event."""

    def __init__(self, secrets: Iterable[str] = (), patterns: Iterable[str] = ()) -> None:
        # Longest first so a secret that contains another is replaced whole. Very short
        # values would redact ordinary words; config validation keeps real ones long.
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)
        # The connectors' own shapes first: they are more specific than the generic
        # ones (a vendor's session id after "Bearer " may hold a "!" the bearer rule
        # would stop at, leaving the rest of the token in the line).
        self._patterns = tuple(re.compile(p) for p in patterns) + CREDENTIAL_PATTERNS

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        for pattern in self._patterns:
            text = pattern.sub(_redact_match, text)
        return text

    def scrub_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {k: self.scrub_value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.scrub_value(v) for v in value)
        if isinstance(value, BaseException):
            return self.scrub(f"{type(value).__name__}: {value}")
        return value

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key, value in list(event_dict.items()):
            event_dict[key] = self.scrub_value(value)
        return event_dict


def _redact_match(match: re.Match[str]) -> str:
    # Patterns with a captured prefix (e.g. "Bearer ", "api_key=") keep the prefix so
    # the log still says what was there.
    prefix = match.group(1) if match.re.groups else ""
    return f"{prefix}{REDACTED}"


LogFormat = Literal["auto", "json", "console"]


def configure_logging(
    *,
    log_format: LogFormat = "auto",
    level: str = "info",
    secrets: Iterable[str] = (),
    patterns: Iterable[str] = (),
    stream: TextIO | None = None,
) -> SecretScrubber:
    """Set up structlog and the stdlib bridge; returns the scrubber in use. ``patterns``:
    the installed connectors' credential shapes (`ConnectorSpec.secret_patterns`)."""
    out = stream or sys.stdout
    use_console = log_format == "console" or (log_format == "auto" and out.isatty())
    scrubber = SecretScrubber(secrets, patterns)
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=out.isatty())
        if use_console
        else structlog.processors.JSONRenderer()
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        scrubber,
    ]
    numeric_level = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Vendor libraries are chatty at INFO (every HTTP request); keep them at WARNING
    # unless debugging.
    root.setLevel(numeric_level if numeric_level <= logging.DEBUG else logging.WARNING)
    return scrubber


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
