"""Deal → invoice draft, checked the way a billing coordinator checks it.

`plan_invoice` routes the deal to a target, maps every field through the mapping
files, asks the target's catalog about products, terms, tax codes and currency, and
returns either an `InvoiceDraft` ready to create or the list of `Rejection`s that stop
it — each naming the deal, the field and the fix. It never raises for bad data and
never calls anything but the catalog, so a bad deal fails alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from billsync.core import money
from billsync.core.canonical import Customer, Deal, DealLine, InvoiceDraft, InvoiceLine
from billsync.core.catalog import ProductQuery, TargetCatalog
from billsync.mappings.loader import LoadedMapping
from billsync.mappings.rejections import Rejection, Rejections
from billsync.mappings.values import deal_context, resolve_value

QBO_DOC_NUMBER_MAX = 21
IdempotencyKeyFn = Callable[[str, str, datetime], str]


@dataclass(frozen=True)
class Planned:
    draft: InvoiceDraft


@dataclass(frozen=True)
class Rejected:
    deal_id: str
    target: str | None
    rejections: tuple[Rejection, ...]


@dataclass(frozen=True)
class Planner:
    """Everything `plan_invoice` needs, built once per run."""

    mapping: LoadedMapping
    catalogs: Mapping[str, TargetCatalog]
    default_target: str | None
    idempotency_key: IdempotencyKeyFn
    today: date | None = None
    _route_table: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        table = {
            value.casefold(): target
            for target, values in self.mapping.spec.routing.values.items()
            for value in values
        }
        object.__setattr__(self, "_route_table", table)

    def route(self, deal: Deal, problems: Rejections) -> str | None:
        hint = (deal.target_hint or "").strip()
        source_field = self.mapping.spec.source.target_hint or "routing field"
        if not hint:
            if self.default_target is None:
                problems.add(
                    f"Opportunity.{source_field}",
                    "is empty and no default target is configured",
                    f"set {source_field} to one of "
                    f"{_choices(self.mapping.spec.routing.values)} or set sync.default_target",
                )
                return None
            target = self.default_target
        else:
            found = self._route_table.get(hint.casefold())
            if found is None:
                problems.add(
                    f"Opportunity.{source_field}",
                    f"'{hint}' is not a known billing platform",
                    f"set it to one of {_choices(self.mapping.spec.routing.values)}, "
                    "or add the value under routing.values in your mapping file",
                )
                return None
            target = found
        if target not in self.catalogs:
            problems.add(
                f"Opportunity.{source_field}",
                f"routes to {target}, which is not enabled",
                f"enable {target} in the configuration or route the deal elsewhere",
            )
            return None
        return target


def _choices(values: Mapping[str, list[str]]) -> str:
    return ", ".join(v[0] for v in values.values() if v)


def plan_invoice(deal: Deal, planner: Planner) -> Planned | Rejected:
    problems = Rejections(deal.id)
    target = planner.route(deal, problems)
    if target is None:
        return Rejected(deal.id, None, problems.items)
    builder = _DraftBuilder(deal, target, planner, problems)
    draft = builder.build()
    if draft is None or problems:
        return Rejected(deal.id, target, problems.items)
    return Planned(draft)


class _DraftBuilder:
    def __init__(self, deal: Deal, target: str, planner: Planner, problems: Rejections) -> None:
        self.deal = deal
        self.target = target
        self.planner = planner
        self.spec = planner.mapping.spec
        self.functions = planner.mapping.functions
        self.catalog = planner.catalogs[target]
        self.problems = problems
        self.context = deal_context(deal)

    def value(self, spec: Any, context: dict[str, Any] | None = None) -> Any:
        if spec is None:
            return None
        try:
            return resolve_value(spec, context or self.context, self.functions)
        except ValueError as exc:
            self.problems.add("mapping", str(exc), "fix the value or the mapping file")
            return None

    def build(self) -> InvoiceDraft | None:
        deal, currency = self.deal, self.deal.currency
        if not self._currency_ok():
            return None  # every line lookup would fail too: one precise reason is enough
        lines = self._lines()
        terms_name, days_until_due = self._terms()
        doc_number = self._doc_number()
        customer = self._customer()
        if self.problems or customer is None:
            return None
        total = money.sum_amounts((line.amount for line in lines), currency)
        self._check_amounts(total)
        if self.problems:
            return None
        try:
            return InvoiceDraft(
                deal_id=deal.id,
                deal_revision=deal.revision,
                target=self.target,
                customer=customer,
                currency=currency,
                lines=tuple(lines),
                total=total,
                doc_number=doc_number,
                memo=self.value(self.spec.invoice.memo),
                automatic_tax=self.target == "stripe" and self.spec.tax.stripe.automatic,
                po_number=self.value(self.spec.invoice.po_number),
                terms=terms_name,
                days_until_due=days_until_due,
                issue_date=self.planner.today,
                idempotency_key=self.planner.idempotency_key(deal.id, self.target, deal.revision),
            )
        except ValidationError as exc:
            for error in exc.errors(include_input=False, include_url=False):
                where = ".".join(str(p) for p in error["loc"]) or "invoice"
                self.problems.add(where, error["msg"], "fix the deal or the mapping")
            return None

    # --- lines -------------------------------------------------------------------

    def _lines(self) -> list[InvoiceLine]:
        deal = self.deal
        if not deal.lines:
            return self._line_for_deal_without_products()
        lines = []
        for number, line in enumerate(deal.lines, start=1):
            built = self._line(number, line)
            if built is not None:
                lines.append(built)
        return lines

    def _line_for_deal_without_products(self) -> list[InvoiceLine]:
        rule = self.spec.deals_without_products
        if rule.action == "fail" or not rule.product_code:
            self.problems.add(
                "Opportunity.OpportunityLineItems",
                "the deal has no products",
                "add products to the opportunity, or set deals_without_products.action to "
                "single_line with a product_code in your mapping file",
            )
            return []
        synthetic = DealLine(
            id=f"{self.deal.id}-amount",
            product_code=rule.product_code,
            description=self.deal.name,
            quantity=Decimal(1),
            unit_price=self.deal.amount,
        )
        built = self._line(1, synthetic)
        return [built] if built is not None else []

    def _line(self, number: int, line: DealLine) -> InvoiceLine | None:
        where = f"OpportunityLineItem[{number}] {line.id}"
        validation = self.spec.validation
        ok = True
        if not line.product_code:
            self.problems.add(
                f"{where}.ProductCode",
                "has no product code",
                "set a ProductCode on the product, so it can be mapped to an item",
            )
            ok = False
        if line.quantity == 0 or (line.quantity < 0 and not validation.allow_credit_lines):
            self.problems.add(
                f"{where}.Quantity",
                f"quantity {line.quantity} is not positive",
                "correct the quantity (credit lines need validation.allow_credit_lines: true)",
            )
            ok = False
        if line.unit_price < 0:
            self.problems.add(
                f"{where}.UnitPrice",
                f"unit price {line.unit_price} is negative",
                "correct the sales price on the line",
            )
            ok = False
        discount = line.discount_percent
        if discount is not None and not Decimal(0) <= discount <= Decimal(100):
            self.problems.add(
                f"{where}.Discount",
                f"discount {discount}% is outside 0–100%",
                "correct the discount on the line",
            )
            ok = False
        if not ok or line.product_code is None:
            return None
        match = self._product(where, line)
        tax_code = self._tax_code(where, line.product_code)
        if match is None:
            return None
        context = deal_context(self.deal, line)
        try:
            return InvoiceLine.priced(
                self.deal.currency,
                source_line_id=line.id,
                item_ref=match,
                description=self.value(self.spec.invoice.line_description, context)
                or line.product_code,
                quantity=line.quantity,
                unit_price=line.unit_price,
                discount_percent=discount if discount else None,
                service_date=self._service_date(line),
                tax_code=tax_code,
                tax_rates=self._tax_rates(where, line.product_code),
            )
        except (ValidationError, money.MoneyError) as exc:
            self.problems.add(where, f"cannot be priced: {_first_error(exc)}", "correct the line")
            return None

    def _product(self, where: str, line: DealLine) -> str | None:
        assert line.product_code is not None
        query = self._product_query(line)
        if query is None:
            return None
        found = self.catalog.resolve_product(query)
        mapping_key = f"products.{self.target}.map"
        if found is None:
            self.problems.add(
                f"{where}.ProductCode",
                f"product '{line.product_code}' has no {_label(self.target)} match "
                f"(looked up by {query.describe()})",
                f"create it in {_label(self.target)} or map {line.product_code} under "
                f"{mapping_key} in your mapping file",
            )
            return None
        if not found.active:
            self.problems.add(
                f"{where}.ProductCode",
                f"{_label(self.target)} item '{found.label}' for product "
                f"'{line.product_code}' is inactive",
                f"reactivate it, or map {line.product_code} to another item under {mapping_key}",
            )
            return None
        return found.ref

    def _product_query(self, line: DealLine) -> ProductQuery | None:
        code = line.product_code or ""
        currency = self.deal.currency
        products = self.spec.products
        candidates: tuple[tuple[str, str], ...]
        if self.target == "quickbooks":
            mapped = products.quickbooks.map.get(code, code)
            candidates = tuple((kind, mapped) for kind in products.quickbooks.resolve_by)
        elif self.target == "stripe":
            explicit = products.stripe.map.get(code)
            if explicit:
                candidates = (("price", explicit),)
            else:
                context = deal_context(self.deal, line)
                lookup = self.value(products.stripe.price_lookup_key, context)
                candidates = (("lookup_key", str(lookup)),) if lookup else ()
                if products.stripe.ad_hoc_prices:
                    candidates += (("product_code", code),)
        else:
            candidates = (("product_code", code),)
        if not candidates:
            self.problems.add(
                "mapping", f"no way to look up product '{code}'", "set products in the mapping"
            )
            return None
        return ProductQuery(code, currency, candidates)

    def _tax_code(self, where: str, product_code: str) -> str | None:
        if self.target != "quickbooks":
            return None
        tax = self.spec.tax.quickbooks
        code = tax.by_product.get(product_code, tax.default_code)
        if code is not None and not self.catalog.tax_code_exists(code):
            self.problems.add(
                f"{where}.ProductCode",
                f"tax code '{code}' does not exist in QuickBooks",
                "create the tax code or change tax.quickbooks in your mapping file",
            )
        return code

    def _tax_rates(self, where: str, product_code: str) -> tuple[str, ...]:
        """Stripe tax rates for a line: by product, else the defaults (none with
        automatic tax, where Stripe computes it)."""
        if self.target != "stripe":
            return ()
        tax = self.spec.tax.stripe
        rates = tax.by_product.get(product_code, [] if tax.automatic else tax.default_rates)
        for rate in rates:
            if not self.catalog.tax_code_exists(rate):
                self.problems.add(
                    f"{where}.ProductCode",
                    f"tax rate '{rate}' does not exist or is inactive in Stripe",
                    "create the tax rate or change tax.stripe in your mapping file",
                )
        return tuple(rates)

    def _service_date(self, line: DealLine) -> date | None:
        rule = self.spec.invoice.service_date
        if rule == "line":
            return line.service_date
        if rule == "close_date":
            return self.deal.close_date
        return None

    # --- deal-level checks -------------------------------------------------------

    def _currency_ok(self) -> bool:
        currency = self.deal.currency
        allowed = getattr(self.spec.currencies, self.target, None)
        if allowed is not None and currency not in allowed:
            self.problems.add(
                "Opportunity.CurrencyIsoCode",
                f"{currency} is not a currency billed through {_label(self.target)} "
                f"(allowed: {', '.join(allowed)})",
                "route the deal to another target or add the currency under currencies "
                "in your mapping file",
            )
            return False
        problem = self.catalog.currency_problem(currency)
        if problem:
            self.problems.add(
                "Opportunity.CurrencyIsoCode", problem, "route the deal to another target"
            )
            return False
        return True

    def _check_amounts(self, total: Decimal) -> None:
        deal, validation = self.deal, self.spec.validation
        if total == 0 and not validation.allow_zero_total:
            self.problems.add(
                "Opportunity.Amount",
                "the lines add up to zero: there is nothing to invoice",
                "correct the products, or set validation.allow_zero_total: true",
            )
        difference = abs(deal.amount - total)
        allowed = validation.amount_tolerance
        if money.currency_exponent(deal.currency) < 2:
            # Salesforce keeps line totals to the cent even in JPY or KRW, while the
            # invoice rounds each line to the currency's unit: half a unit per line is
            # rounding, not a pricing error.
            allowed += money.minor_unit(deal.currency) * len(deal.lines) / 2
        if deal.lines and difference > allowed:
            self.problems.add(
                "Opportunity.Amount",
                f"deal amount {deal.amount} differs from the sum of its lines {total} "
                f"by {difference} {deal.currency}",
                "correct the line prices, quantities or discounts so they add up to the "
                "deal amount",
            )

    def _terms(self) -> tuple[str | None, int | None]:
        terms = self.spec.terms
        name = (self.deal.terms or "").strip() or terms.default
        if name is None:
            return None, None
        entry = terms.values.get(name)
        if entry is None:
            self.problems.add(
                f"Opportunity.{self.spec.source.terms or 'terms'}",
                f"payment terms '{name}' are not known",
                f"use one of {', '.join(terms.values)} or add '{name}' under terms.values",
            )
            return None, None
        if self.target == "quickbooks":
            if entry.quickbooks is None or not self.catalog.term_exists(entry.quickbooks):
                self.problems.add(
                    f"Opportunity.{self.spec.source.terms or 'terms'}",
                    f"payment terms '{name}' have no QuickBooks term"
                    + (f" ('{entry.quickbooks}' does not exist)" if entry.quickbooks else ""),
                    "create the term in QuickBooks or fix terms.values in your mapping file",
                )
                return None, None
            return entry.quickbooks, None
        if self.target == "stripe":
            if entry.stripe is None:
                self.problems.add(
                    f"Opportunity.{self.spec.source.terms or 'terms'}",
                    f"payment terms '{name}' have no Stripe equivalent",
                    f"add terms.values.{name}.stripe to your mapping file",
                )
                return None, None
            if entry.stripe.collection_method == "charge_automatically":
                return name, None
            return name, entry.stripe.days_until_due
        return name, None

    def _doc_number(self) -> str | None:
        value = self.value(self.spec.invoice.doc_number)
        if value is None or value == "":
            return None
        text = str(value)
        if self.target == "quickbooks" and len(text) > QBO_DOC_NUMBER_MAX:
            self.problems.add(
                "invoice.doc_number",
                f"'{text}' is longer than QuickBooks' {QBO_DOC_NUMBER_MAX} characters",
                "shorten invoice.doc_number in your mapping file (e.g. {truncate: 21})",
            )
            return None
        return text

    def _customer(self) -> Customer | None:
        account = self.deal.account
        name = str(self.value(self.spec.customer.name) or "").strip()
        if not name:
            self.problems.add(
                "Account.Name",
                "the account has no usable name for the customer",
                "give the account a name in Salesforce (or fix customer.name in the mapping)",
            )
            return None
        email = self.value(self.spec.customer.email)
        return Customer(
            account_id=account.id,
            name=str(name),
            email=email or None,
            billing_address=account.billing_address,
            currency=self.deal.currency,
            account_number=account.number,
        )


def _label(target: str) -> str:
    return {"quickbooks": "QuickBooks", "stripe": "Stripe"}.get(target, target)


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        errors = exc.errors(include_input=False, include_url=False)
        return str(errors[0]["msg"]) if errors else str(exc)
    return str(exc)
