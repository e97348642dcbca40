"""Customer resolution: link → exact DisplayName → email → create, in few calls.

The ledger link is the engine's: a `Customer` with ``external_id`` is returned as is.
Otherwise, for a whole set of customers at once:

1. one query per ≤ 50 names: ``DisplayName IN (...) AND Active IN (true, false)``
   (exact, case-insensitive as QBO compares; inactive included so it can be reported);
2. if ``match_customer_by_email``: one query per ≤ 50 emails among the rest, active
   customers only; an email shared by several customers matches none of them;
3. the rest are created in batches (≤ 30 a call, with a requestid).

DisplayName rules (api-facts §2.2): unique across Customer, Vendor AND Employee, no
``:`` (replaced by ``display_name_colon_replacement``), ≤ 500 characters. When a
create fails with 6240 (the name is taken), a Customer of that exact name is looked
for first — our own earlier create whose answer was lost, or another run's — and
adopted; otherwise ``duplicate_name_strategy`` appends the account number (or the last
6 characters of the account id) — "Acme (AC-00001)" — and creates once more. What was
done is logged and returned in ``Customer.name``; `outcomes` keeps it per account.

A matching customer that is inactive is reported (``invalid_data``), not reactivated,
unless ``reactivate_inactive_customers`` is set. QuickBooks customers have one
currency: a name match in another currency is reported; an email match in another
currency is skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from config.settings import QuickBooksSettings
from connectors.base import ConnectorError, ErrorClass
from connectors.quickbooks.catalog import ALL, QboCatalog
from connectors.quickbooks.client import SYSTEM, QboClient, batch_fault
from connectors.quickbooks.convert import customer_body, display_name, ref_value
from connectors.quickbooks.query import in_list, in_lists, select
from sync.canonical import Customer
from sync.idempotency import short_key
from sync.logs import get_logger

__all__ = ["CustomerResolver"]

log = get_logger("billsync.quickbooks.customers")
Outcome = Customer | ConnectorError


def _invalid(message: str, code: str) -> ConnectorError:
    return ConnectorError(
        system=SYSTEM,
        error_class=ErrorClass.INVALID_DATA,
        message=message,
        code=code,
        field="customer",
    )


def _index(records: Iterable[Mapping[str, Any]], key: str) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        value = record.get(key)
        if isinstance(value, Mapping):
            value = value.get("Address")
        if value:
            found.setdefault(str(value).casefold(), []).append(dict(record))
    return found


class CustomerResolver:
    def __init__(self, client: QboClient, settings: QuickBooksSettings, catalog: QboCatalog):
        self._client = client
        self._settings = settings
        self._catalog = catalog
        self._done: dict[str, Outcome] = {}
        self.outcomes: dict[str, str] = {}  # account id -> what was done, for the audit

    def ensure(self, customer: Customer) -> Customer:
        result = self.ensure_many([customer])[customer.account_id]
        if isinstance(result, ConnectorError):
            raise result
        return result

    def ensure_many(self, customers: Sequence[Customer]) -> dict[str, Outcome]:
        """One outcome per account id; resolved customers are cached for the run."""
        out: dict[str, Outcome] = {}
        todo: dict[str, Customer] = {}
        for customer in customers:
            key = customer.account_id
            if key in out or key in todo:
                continue
            if customer.external_id:
                out[key] = customer
                self.outcomes.setdefault(key, "linked")
            elif key in self._done:
                out[key] = self._done[key]
            else:
                todo[key] = customer
        if todo:
            names = {key: self._name(c) for key, c in todo.items()}
            rest = self._match_names(todo, names, out)
            rest = self._match_emails(rest, out)
            self._create(rest, names, out)
            for key in todo:
                result = out[key]
                if isinstance(result, Customer) or not result.is_retryable:
                    self._done[key] = result
        return out

    # --- matching ------------------------------------------------------------------

    def _name(self, customer: Customer, suffix: str = "") -> str:
        return display_name(customer.name, self._settings.display_name_colon_replacement, suffix)

    def _by_names(self, names: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        rows: list[dict[str, Any]] = []
        for chunk in in_lists(names):
            statement = select("Customer", f"DisplayName IN {in_list(chunk)}", ALL)
            rows += self._client.query(statement).get("Customer", [])
        return _index(rows, "DisplayName")

    def _match_names(
        self, todo: Mapping[str, Customer], names: Mapping[str, str], out: dict[str, Outcome]
    ) -> list[Customer]:
        found = self._by_names(names.values())
        rest = []
        for key, customer in todo.items():
            match = found.get(names[key].casefold())
            if match:
                out[key] = self._accept(customer, match[0], "matched_by_name")
            else:
                rest.append(customer)
        return rest

    def _match_emails(self, rest: list[Customer], out: dict[str, Outcome]) -> list[Customer]:
        emails = [c.email for c in rest if c.email]
        if not self._settings.match_customer_by_email or not emails:
            return rest
        rows: list[dict[str, Any]] = []
        for chunk in in_lists(emails):
            statement = select("Customer", f"PrimaryEmailAddr IN {in_list(chunk)}")
            rows += self._client.query(statement).get("Customer", [])
        found = _index(rows, "PrimaryEmailAddr")
        unmatched = []
        home = self._catalog.home_currency
        for customer in rest:
            candidates = [
                r
                for r in found.get((customer.email or "").casefold(), [])
                if customer.currency is None
                or (ref_value(r.get("CurrencyRef")) or home) == customer.currency
            ]
            if len(candidates) == 1:
                out[customer.account_id] = self._accept(customer, candidates[0], "matched_by_email")
                continue
            if len(candidates) > 1:
                log.warning(
                    "quickbooks.customer_email_ambiguous",
                    account_id=customer.account_id,
                    customer_ids=[r["Id"] for r in candidates],
                )
            unmatched.append(customer)
        return unmatched

    def _accept(self, customer: Customer, record: Mapping[str, Any], how: str) -> Outcome:
        label = f"QuickBooks customer '{record.get('DisplayName')}' (Id {record['Id']})"
        currency = ref_value(record.get("CurrencyRef")) or self._catalog.home_currency
        if customer.currency and currency != customer.currency:
            return _invalid(
                f"{label} bills in {currency} but account {customer.account_id} is invoiced "
                f"in {customer.currency}; QuickBooks customers have one currency — rename one "
                "of them or bill the deal in the customer's currency",
                "CURRENCY_MISMATCH",
            )
        if not record.get("Active", True):
            if not self._settings.reactivate_inactive_customers:
                return _invalid(
                    f"{label} matches account {customer.account_id} but is inactive; "
                    "reactivate it in QuickBooks or set "
                    "quickbooks.reactivate_inactive_customers: true",
                    "INACTIVE_CUSTOMER",
                )
            try:
                record = self._client.update(
                    "Customer",
                    str(record["Id"]),
                    lambda cur: {
                        "Id": cur["Id"], "SyncToken": cur["SyncToken"], "sparse": True,
                        "Active": True,
                    },
                )  # fmt: skip
            except ConnectorError as exc:
                return exc
            how = "reactivated"
        self.outcomes[customer.account_id] = how
        log.info(
            "quickbooks.customer_resolved",
            account_id=customer.account_id,
            customer_id=record["Id"],
            how=how,
        )
        return customer.model_copy(
            update={"external_id": str(record["Id"]), "name": str(record["DisplayName"])}
        )

    # --- creating ------------------------------------------------------------------

    def _create(
        self, rest: list[Customer], names: Mapping[str, str], out: dict[str, Outcome]
    ) -> None:
        size = self._settings.batch_size
        for start in range(0, len(rest), size):
            chunk = rest[start : start + size]
            if len(chunk) == 1:
                customer = chunk[0]
                out[customer.account_id] = self._create_one(customer, names[customer.account_id])
                continue
            self._create_batch(chunk, names, out)

    def _create_batch(
        self, chunk: list[Customer], names: Mapping[str, str], out: dict[str, Outcome]
    ) -> None:
        home = self._catalog.home_currency
        items = [
            {
                "bId": f"c{i}",
                "operation": "create",
                "Customer": customer_body(c, names[c.account_id], home),
            }
            for i, c in enumerate(chunk)
        ]
        request_id = short_key(
            "\n".join(sorted(f"{c.account_id}:{names[c.account_id]}" for c in chunk)), "customers"
        )
        try:
            answer = self._client.call(
                "POST", "batch", body={"BatchItemRequest": items}, request_id=request_id, batch=True
            )
        except ConnectorError as exc:
            if exc.error_class is ErrorClass.AUTH:
                raise
            # Safe to fall back even when the batch's fate is unknown: a customer the
            # lost batch created makes the single create fail 6240, and 6240 adopts a
            # Customer of exactly that name.
            answer = {"BatchItemResponse": []}
        by_bid = {str(a.get("bId")): a for a in answer.get("BatchItemResponse", [])}
        for i, customer in enumerate(chunk):
            key, item = customer.account_id, by_bid.get(f"c{i}", {})
            if "Customer" in item:
                self.outcomes[key] = "created"
                out[key] = customer.model_copy(
                    update={"external_id": str(item["Customer"]["Id"]), "name": names[key]}
                )
            elif "Fault" in item and batch_fault(item["Fault"]).code == "6240":
                out[key] = self._on_duplicate(customer, names[key], renamed=False)
            elif "Fault" in item and not batch_fault(item["Fault"]).is_retryable:
                out[key] = batch_fault(item["Fault"])
            else:
                out[key] = self._create_one(customer, names[key])

    def _create_one(self, customer: Customer, name: str, renamed: bool = False) -> Outcome:
        body = customer_body(customer, name, self._catalog.home_currency)
        try:
            record = self._client.call(
                "POST",
                "customer",
                body=body,
                request_id=short_key(f"{customer.account_id}:{name}", "customer"),
            )["Customer"]
        except ConnectorError as exc:
            if exc.code == "6240":
                return self._on_duplicate(customer, name, renamed)
            return exc
        self.outcomes[customer.account_id] = "created_renamed" if renamed else "created"
        return customer.model_copy(update={"external_id": str(record["Id"]), "name": name})

    def _on_duplicate(self, customer: Customer, name: str, renamed: bool) -> Outcome:
        alternative = None if renamed else self._alternative(customer)
        found = self._by_names([name] + ([alternative] if alternative else []))
        if found.get(name.casefold()):
            return self._accept(customer, found[name.casefold()][0], "matched_by_name")
        if alternative is None:
            return _invalid(
                f"the name '{name}' for account {customer.account_id} is already used by a "
                "QuickBooks vendor or employee; rename one of them"
                + ("" if renamed else " or set quickbooks.duplicate_name_strategy"),
                "6240",
            )
        log.info(
            "quickbooks.customer_renamed",
            account_id=customer.account_id,
            wanted=name,
            display_name=alternative,
            reason="6240: the name is used by a vendor or employee",
        )
        if found.get(alternative.casefold()):
            return self._accept(customer, found[alternative.casefold()][0], "matched_renamed")
        return self._create_one(customer, alternative, renamed=True)

    def _alternative(self, customer: Customer) -> str | None:
        strategy = self._settings.duplicate_name_strategy
        if strategy == "fail":
            return None
        tag = customer.account_number if strategy == "account_number" else None
        tag = (tag or customer.account_id[-6:]).replace(":", "-")
        return self._name(customer, f" ({tag})")
