"""`QboCatalog`: what the mapping layer may ask QuickBooks, loaded once per run.

Items, Terms and TaxCodes are each read once (paged, 1,000 a page) on first use and
kept for the run — inactive ones included (``Active IN (true, false)``; QBO hides
them otherwise), so "inactive" can be told apart from "missing". Preferences give the
home currency and whether multicurrency is on.

Currencies: the home currency is always fine. Any other needs multicurrency AND an
exchange rate. A draft carries no rate today, and sending none (QuickBooks' own daily
rate, or the sandbox's refusal) or python-quickbooks' default of 1 would book foreign
money at a rate nobody chose — the "silent 1:1" every QuickBooks integration is known
for. So a foreign currency is reported as a problem before any draft is accepted.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from billsync.connectors.quickbooks.client import QboClient
from billsync.connectors.quickbooks.convert import ref_value
from billsync.connectors.quickbooks.settings import QuickBooksSettings
from billsync.core.catalog import ProductMatch, ProductQuery
from billsync.core.logs import get_logger
from billsync.core.protocols import ConnectorError, ErrorClass

__all__ = ["QboCatalog"]

log = get_logger("billsync.quickbooks.catalog")
ALL = "Active IN (true, false)"


@dataclass(frozen=True)
class _Named:
    id: str
    name: str
    active: bool


def _named(record: Mapping[str, Any]) -> _Named:
    return _Named(str(record["Id"]), str(record.get("Name") or ""), record.get("Active", True))


def _best(found: list[_Named]) -> _Named:
    """Active before inactive, then the oldest (lowest numeric id)."""

    def key(entry: _Named) -> tuple[bool, int, str]:
        return (not entry.active, int(entry.id) if entry.id.isdigit() else 0, entry.id)

    return sorted(found, key=key)[0]


class _Index:
    def __init__(self) -> None:
        self.by_key: dict[tuple[str, str], list[_Named]] = {}

    def add(self, kind: str, value: Any, entry: _Named) -> None:
        if value:
            self.by_key.setdefault((kind, str(value).casefold()), []).append(entry)

    def get(self, kind: str, value: str) -> list[_Named]:
        return self.by_key.get((kind, value.casefold()), [])


class QboCatalog:
    """Implements ``billsync.core.catalog.TargetCatalog`` for one QuickBooks company."""

    def __init__(
        self, client: QboClient, settings: QuickBooksSettings, *, name: str = "quickbooks"
    ) -> None:
        self.target = name  # the connection's name (`BuildContext.connection`)
        self._client = client
        self._settings = settings
        self._lock = threading.Lock()
        self._items: _Index | None = None
        self._terms: _Index | None = None
        self._tax_codes: _Index | None = None
        self._prefs: tuple[str, bool] | None = None
        self._warned: set[tuple[str, str]] = set()

    # --- TargetCatalog -----------------------------------------------------------

    def resolve_product(self, query: ProductQuery) -> ProductMatch | None:
        items = self._loaded("items", self._load_items)
        for kind, value in query.candidates:
            if kind not in ("sku", "name", "id"):
                continue
            found = items.get(kind, value)
            if not found:
                continue
            best = _best(found)
            if len(found) > 1 and (kind, value) not in self._warned:
                self._warned.add((kind, value))
                log.warning(
                    "quickbooks.item_ambiguous",
                    product_code=query.product_code,
                    by=kind,
                    candidates=[f.id for f in found],
                    chosen=best.id,
                )
            return ProductMatch(ref=best.id, label=best.name, active=best.active)
        return None

    def currency_problem(self, currency: str) -> str | None:
        home, multicurrency = self.preferences()
        if currency == home:
            return None
        if not multicurrency:
            return (
                f"the QuickBooks company bills in {home} and multicurrency is off, so it "
                f"cannot invoice in {currency}"
            )
        return (
            f"QuickBooks needs an exchange rate to invoice {currency} in a {home} company, "
            "and billsync has none for the deal (it never books at a silent 1:1 rate)"
        )

    def term_exists(self, name: str) -> bool:
        return self.term_id(name) is not None

    def tax_code_exists(self, code: str) -> bool:
        return self.tax_code_id(code) is not None

    # --- lookups for the invoice writer -----------------------------------------

    def term_id(self, name: str) -> str | None:
        return self._active_id(self._loaded("terms", self._load_terms), name)

    def tax_code_id(self, code: str) -> str | None:
        return self._active_id(self._loaded("tax_codes", self._load_tax_codes), code)

    @property
    def home_currency(self) -> str:
        return self.preferences()[0]

    def currency_of(self, record: Mapping[str, Any]) -> str:
        """The currency a QuickBooks record names, else the home currency.

        QuickBooks names the currency (CurrencyRef) on every Invoice and Payment it
        returns, so reads (payment feed, invoice lookups) cost no preferences call: an
        idle run reads none. Only a record without one needs the home currency.
        """
        return ref_value(record.get("CurrencyRef")) or self.home_currency

    def preferences(self) -> tuple[str, bool]:
        """(home currency, multicurrency enabled), read once, on first need: invoice
        and customer creation, or a record that names no currency."""
        with self._lock:
            if self._prefs is None:
                self._prefs = self._load_preferences()
            return self._prefs

    # --- loading ------------------------------------------------------------------

    def _loaded(self, attr: str, load: Callable[[], _Index]) -> _Index:
        with self._lock:
            index: _Index | None = getattr(self, f"_{attr}")
            if index is None:
                index = load()
                setattr(self, f"_{attr}", index)
            return index

    @staticmethod
    def _active_id(index: _Index, value: str) -> str | None:
        found = [
            entry for entry in index.get("name", value) + index.get("id", value) if entry.active
        ]
        return _best(found).id if found else None

    def _load_items(self) -> _Index:
        index = _Index()
        for record in self._client.query_all("Item", ALL):
            if record.get("Type") == "Category":
                continue  # categories group items; they cannot be sold on a line
            entry = _named(record)
            index.add("id", entry.id, entry)
            index.add("sku", record.get("Sku"), entry)
            index.add("name", entry.name, entry)
            full = record.get("FullyQualifiedName")
            if full and full != entry.name:
                index.add("name", full, entry)
        log.info("quickbooks.items_loaded", count=len(index.by_key))
        return index

    def _load_terms(self) -> _Index:
        return self._load_names("Term")

    def _load_tax_codes(self) -> _Index:
        return self._load_names("TaxCode")

    def _load_names(self, entity: str) -> _Index:
        index = _Index()
        for record in self._client.query_all(entity, ALL):
            entry = _named(record)
            index.add("id", entry.id, entry)
            index.add("name", entry.name, entry)
        return index

    def _load_preferences(self) -> tuple[str, bool]:
        configured = self._settings.home_currency
        try:
            prefs = self._client.call("GET", "preferences", reading=True).get("Preferences", {})
        except ConnectorError as exc:
            if exc.is_retryable or exc.error_class is ErrorClass.AUTH:
                raise
            log.warning("quickbooks.preferences_unreadable", code=exc.code)
            return configured, False
        currency_prefs = prefs.get("CurrencyPrefs") or {}
        home = ref_value(currency_prefs.get("HomeCurrency")) or configured
        if home != configured:
            log.warning("quickbooks.home_currency_differs", configured=configured, company=home)
        return home, bool(currency_prefs.get("MultiCurrencyEnabled", False))
