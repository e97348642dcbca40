"""Ops sessions in the ledger: only the hash is kept, idle and lifetime end a session,
logout and revoke end it for good, each with its audit row."""

from __future__ import annotations

from datetime import timedelta

import pytest

from billsync.sync.ledger import Ledger
from tests.ledger.conftest import FakeClock

IDLE, LIFE = timedelta(minutes=30), timedelta(hours=12)
A, B = "a1" * 32, "b2" * 32


def test_a_session_lives_while_used_and_ends_when_idle(ledger: Ledger, clock: FakeClock) -> None:
    created = ledger.create_ops_session(A, "ops-web:a1a1a1a1a1a1", "10.0.0.5")
    assert created.label == "a1a1a1a1a1a1"
    for _ in range(30):  # used every 25 minutes for 12.5 hours: the lifetime ends it
        clock.advance(timedelta(minutes=25))
        seen = ledger.touch_ops_session(A, idle=IDLE, lifetime=LIFE)
        if seen is None:
            break
        assert seen.last_seen_at == clock()
    assert clock() - created.created_at >= LIFE - timedelta(minutes=25)
    ledger.create_ops_session(B, "ops-web:b2b2b2b2b2b2", None)
    clock.advance(IDLE + timedelta(seconds=1))
    assert ledger.touch_ops_session(B, idle=IDLE, lifetime=LIFE) is None
    [ended] = [s for s in ledger.ops_sessions(idle=IDLE, lifetime=LIFE, include_ended=True)
               if s.id_hash == B]  # fmt: skip
    assert ended.revoked_by == "idle" and ended.revoked_at == clock()
    assert ledger.touch_ops_session("unknown", idle=IDLE, lifetime=LIFE) is None


def test_logout_and_revoke_end_sessions_with_an_audit_row(ledger: Ledger) -> None:
    ledger.create_ops_session(A, "ops-web:a1a1a1a1a1a1", "10.0.0.5")
    ledger.create_ops_session(B, "ops-web:b2b2b2b2b2b2", "10.0.0.6")
    assert ledger.end_ops_session(A, "ops-web:a1a1a1a1a1a1")
    assert not ledger.end_ops_session(A, "ops-web:a1a1a1a1a1a1")
    assert ledger.touch_ops_session(A, idle=IDLE, lifetime=LIFE) is None
    assert [s.id_hash for s in ledger.ops_sessions(idle=IDLE, lifetime=LIFE)] == [B]
    assert ledger.revoke_ops_sessions("a1a1a1a1", "cli:ana") == []  # already ended
    [revoked] = ledger.revoke_ops_sessions("b2b2b2b2", "cli:ana")
    assert revoked.id_hash == B and ledger.ops_sessions(idle=IDLE, lifetime=LIFE) == []
    actions = [(e.actor, e.action) for e in ledger.audit_for("ops-session:b2b2b2b2b2b2")]
    assert actions == [("ops-web:b2b2b2b2b2b2", "ops.login"), ("cli:ana", "ops.session_revoked")]
    with pytest.raises(ValueError, match="not a session label"):
        ledger.revoke_ops_sessions("b2%", "cli:ana")


def test_revoke_all(ledger: Ledger) -> None:
    ledger.create_ops_session(A, "ops-web:a1a1a1a1a1a1", None)
    ledger.create_ops_session(B, "ops-web:b2b2b2b2b2b2", None)
    assert {s.id_hash for s in ledger.revoke_ops_sessions(None, "cli:ana")} == {A, B}
    assert ledger.ops_sessions(idle=IDLE, lifetime=LIFE) == []
    assert len(ledger.ops_sessions(idle=IDLE, lifetime=LIFE, include_ended=True)) == 2
