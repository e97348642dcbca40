"""Which existing target customer, if any, an account may adopt: one rule for every target.

Connectors find the candidates their own way (by display name, or by name and email
search plus the account id billsync writes on its customers) and ask `decide`;
the engine passes who each candidate is already linked to in the ledger (``owners``)
and records how each link was made (``created`` | ``matched``, with the evidence).

The rule (issue 16, "Customer identity"):

====================================================  ==================================
candidates (same name unless said otherwise)          decision
====================================================  ==================================
none with the name (email-only hits are ignored:      `NoMatch`: create a customer
shared AP mailboxes are common)
the record names this account (in its notes or       `Adopt` (evidence: account_id):
metadata) and no other account holds it               billsync made it, its answer lost
one, unowned, agreeing on email, postal code or tax   `Adopt` (evidence: name and the
id                                                    fields that agreed)
one, unowned, nothing else agreeing (or nothing to    `Ambiguous`: a person decides
compare)
several unowned                                       `Ambiguous`
one owned by another account that agrees on email,    `Ambiguous` (same company twice in
postal code or tax id                                 the source? link on purpose)
only ones owned by other accounts, agreeing on        `NameTaken`: someone else's
nothing but the name                                  customer; create under another name
====================================================  ==================================

"Owned" means linked in the ledger to another account, claimed by another account
earlier in the same batch, or naming another account in its own record.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from billsync.core.canonical import Customer
from billsync.core.protocols import ConnectorError, ErrorClass

__all__ = [
    "CREATED",
    "MATCHED",
    "OPERATOR",
    "Adopt",
    "Ambiguous",
    "Candidate",
    "CustomerOwners",
    "MatchesCustomers",
    "NameTaken",
    "NoMatch",
    "Resolved",
    "ambiguous_error",
    "decide",
    "link_command",
    "no_owners",
]

CREATED, MATCHED, OPERATOR = "created", "matched", "operator"  # customer_links.method
# The identifiers that can confirm a name match; email never decides alone.
CONFIRMING = ("email", "postal_code", "tax_id")

# customer ids -> the accounts each is linked to (ledger), for one target.
CustomerOwners = Callable[[Collection[str]], Mapping[str, Collection[str]]]


def no_owners(_ids: Collection[str]) -> Mapping[str, Collection[str]]:
    """For callers without a ledger (a connector used on its own): nobody is known."""
    return {}


@dataclass(frozen=True)
class Candidate:
    """An existing target customer, in the rule's terms."""

    id: str
    name: str
    email: str | None = None
    postal_code: str | None = None
    tax_id: str | None = None
    account_id: str | None = None  # the account the record itself names, if any
    record: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class NoMatch:
    pass


@dataclass(frozen=True)
class Adopt:
    candidate: Candidate
    evidence: dict[str, Any]


@dataclass(frozen=True)
class Ambiguous:
    candidates: tuple[Candidate, ...]
    reason: str
    owners: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class NameTaken:
    candidates: tuple[Candidate, ...]


Decision = NoMatch | Adopt | Ambiguous | NameTaken


@dataclass(frozen=True)
class Resolved:
    """A customer with its target id, and how the link came about (for the ledger)."""

    customer: Customer
    method: str | None  # CREATED | MATCHED; None: already linked (given external_id)
    evidence: dict[str, Any] | None = None


@runtime_checkable
class MatchesCustomers(Protocol):
    """A target that resolves many customers under the identity rule (both built-in ones)."""

    def resolve_customers(
        self, customers: Sequence[Customer], owners: CustomerOwners
    ) -> Mapping[str, Resolved | ConnectorError]: ...


def _name(value: str | None) -> str:
    return " ".join((value or "").split()).casefold()


def _plain(value: str | None) -> str:
    return (value or "").strip().casefold()


def _postal(value: str | None) -> str:
    return re.sub(r"[\s-]", "", value or "").upper()


_NORMAL: dict[str, Callable[[str | None], str]] = {
    "email": _plain,
    "postal_code": _postal,
    "tax_id": _postal,
}


def _wanted(customer: Customer) -> dict[str, str | None]:
    address = customer.billing_address
    return {
        "email": customer.email,
        "postal_code": address.postal_code if address else None,
        # The canonical Customer carries no tax id yet; candidates may.
        "tax_id": None,
    }


def _agreeing(customer: Customer, candidate: Candidate) -> list[str]:
    wanted = _wanted(customer)
    agreed = []
    for key in CONFIRMING:
        mine, theirs = _NORMAL[key](wanted[key]), _NORMAL[key](getattr(candidate, key))
        if mine and mine == theirs:
            agreed.append(key)
    return agreed


def decide(
    customer: Customer,
    candidates: Sequence[Candidate],
    *,
    names: Collection[str],
    owners: Mapping[str, Collection[str]],
) -> Decision:
    """The decision for ``customer`` among ``candidates`` (any order; ties keep it).

    ``names``: the names the account's customer may carry in the target (e.g. a display
    name and its disambiguated form). ``owners``: candidate id -> accounts it is
    linked to or claimed by (this account's own entries are ignored)."""
    account = customer.account_id
    wanted_names = {_name(n) for n in names}

    def others(candidate: Candidate) -> tuple[str, ...]:
        held = set(owners.get(candidate.id, ())) - {account}
        if candidate.account_id and candidate.account_id != account:
            held.add(candidate.account_id)
        return tuple(sorted(held))

    ours = [c for c in candidates if c.account_id == account]
    if ours:
        taken = {c.id: others(c) for c in ours if others(c)}
        free = [c for c in ours if c.id not in taken]
        if free:
            return Adopt(free[0], {"account_id": account})
        return Ambiguous(tuple(ours), "it is linked to another account", taken)
    named = [c for c in candidates if _name(c.name) in wanted_names]
    if not named:
        return NoMatch()
    held = {c.id: others(c) for c in named}
    owned = [c for c in named if held[c.id]]
    free = [c for c in named if not held[c.id]]
    owned_agreeing = [c for c in owned if _agreeing(customer, c)]
    if owned_agreeing:
        return Ambiguous(
            tuple(named),
            "a customer with this name and "
            + " and ".join(_agreeing(customer, owned_agreeing[0])).replace("_", " ")
            + " is already linked to another account",
            {c.id: held[c.id] for c in owned},
        )
    if len(free) > 1:
        return Ambiguous(tuple(named), f"{len(free)} customers carry this name", {})
    if len(free) == 1:
        agreed = _agreeing(customer, free[0])
        if agreed:
            evidence: dict[str, Any] = {"name": free[0].name}
            evidence.update({key: getattr(free[0], key) for key in agreed})
            return Adopt(free[0], evidence)
        return Ambiguous(
            (free[0],),
            "only the name agrees (no email, billing postal code or tax id in common)",
            {},
        )
    return NameTaken(tuple(owned))


def link_command(target: str, account_id: str, customer_id: str) -> str:
    return (
        f"billsync customers link {target} {shlex.quote(account_id)} "
        f'{shlex.quote(customer_id)} --note "…"'
    )


def ambiguous_error(
    system: str, label: str, customer: Customer, decision: Ambiguous
) -> ConnectorError:
    """The needs-attention error: the candidates and the exact command to link one."""
    listed = []
    for c in decision.candidates:
        held = decision.owners.get(c.id) or ()
        linked = f", linked to account {', '.join(held)}" if held else ""
        listed.append(f"{c.id} '{c.name}'{linked}")
    first = decision.candidates[0].id
    message = (
        f"account {customer.account_id} ('{customer.name}') may be an existing {label} "
        f"customer but billsync will not guess: {decision.reason}. Candidates: "
        + "; ".join(listed)
        + f". If one is this account's customer, link it: "
        f"`{link_command(system, customer.account_id, first)}` (use the right id), and the "
        f"next run invoices on it. If none is, create the customer in {label} under a "
        "distinct name and link that one."
    )
    return ConnectorError(
        system=system,
        error_class=ErrorClass.INVALID_DATA,
        message=message,
        code="CUSTOMER_AMBIGUOUS",
        field="customer",
    )
