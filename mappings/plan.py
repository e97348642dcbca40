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
from billsync.core.target_mapping import LineTax
from billsync.mappings.loader import LoadedMapping
from billsync.mappings.rejections import Rejection, Rejections
from billsync.mappings.routing import Router
from billsync.mappings.values import ValueSpec, deal_context, parse_value_spec, resolve_value

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
    """Everything `plan_invoice` needs, built once per run. ``catalogs`` are the enabled
    target connections' catalogs by connection name; ``labels`` how people call each
    ("Ledgerly (ledgerly_uk)"; default: from the connectors the mapping was loaded for)."""

    mapping: LoadedMapping
    catalogs: Mapping[str, TargetCatalog]
    default_target: str | None
    idempotency_key: IdempotencyKeyFn
    today: date | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    _router: Router = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        spec = self.mapping.spec
        router = Router(spec.routing, spec.source.target_hint, self.default_target)
        object.__setattr__(self, "_router", router)

    def route(self, deal: Deal, problems: Rejections) -> str | None:
        return self._router.route(deal, self.catalogs, problems)

    def label(self, target: str) -> str:
        return self.labels.get(target) or self.mapping.spec.targets.label(target)


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
        self.rules = self.spec.targets.mapping(target)
        self.label = planner.label(target)
        self.products_key, self.products = self.spec.targets.section(
            self.spec.products, target, "products"
        )
        self.tax_key, self.tax = self.spec.targets.section(self.spec.tax, target, "tax")

    def value(self, spec: Any, context: dict[str, Any] | None = None) -> Any:
        if spec is None:
            return None
        try:
            if not isinstance(spec, ValueSpec):  # a connector model's unvalidated default
                spec = parse_value_spec(spec, self.functions, line_level=True)
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
                automatic_tax=self.rules.automatic_tax(self.tax),
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
        tax = self._tax(where, line.product_code)
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
                tax_code=tax.code,
                tax_rates=tax.rates,
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
        noun = f"{self.label} {self.rules.product_noun}"
        mapped = f"products.{self.products_key}.map"
        if found is None:
            fix = f"create it in {self.label}"
            if self.rules.product_map is not None:
                fix += f" or map {line.product_code} under {mapped} in your mapping file"
            self.problems.add(
                f"{where}.ProductCode",
                f"product '{line.product_code}' has no {self.label} match "
                f"(looked up by {query.describe()})",
                fix,
            )
            return None
        if not found.active:
            self.problems.add(
                f"{where}.ProductCode",
                f"{noun} '{found.label}' for product '{line.product_code}' is inactive",
                f"reactivate it, or map {line.product_code} to another one under {mapped}",
            )
            return None
        return found.ref

    def _product_query(self, line: DealLine) -> ProductQuery | None:
        code = line.product_code or ""
        context = deal_context(self.deal, line)
        candidates = self.rules.product_candidates(
            self.products, code, lambda spec: self.value(spec, context)
        )
        if not candidates:
            self.problems.add(
                "mapping",
                f"no way to look up product '{code}'",
                f"set products.{self.products_key} in the mapping",
            )
            return None
        return ProductQuery(code, self.deal.currency, candidates)

    def _tax(self, where: str, product_code: str) -> LineTax:
        """The line's tax codes or rates (`TargetMapping.line_tax`); each must exist."""
        tax = self.rules.line_tax(self.tax, product_code)
        noun = self.rules.tax_noun
        for name in tax.names():
            if not self.catalog.tax_code_exists(name):
                self.problems.add(
                    f"{where}.ProductCode",
                    f"{noun} '{name}' does not exist or is inactive in {self.label}",
                    f"create the {noun} or change tax.{self.tax_key} in your mapping file",
                )
        return tax

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
        _, allowed = self.spec.targets.entry(self.spec.currencies, self.target)
        if allowed is not None and currency not in allowed:
            self.problems.add(
                "Opportunity.CurrencyIsoCode",
                f"{currency} is not a currency billed through {self.label} "
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
            # The source keeps line totals to the cent even in JPY or KRW, while the
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
        where = f"Opportunity.{self.spec.source.terms or 'terms'}"
        entry = terms.values.get(name)
        if entry is None:
            self.problems.add(
                where,
                f"payment terms '{name}' are not known",
                f"use one of {', '.join(terms.values)} or add '{name}' under terms.values",
            )
            return None, None
        meaning = self.rules.term_meaning(self.spec.targets.entry(entry, self.target)[1], name)
        if meaning is None:
            self.problems.add(
                where,
                f"payment terms '{name}' have no {self.label} equivalent",
                f"add terms.values.{name}.{self.target} to your mapping file",
            )
            return None, None
        if meaning.must_exist and not (
            meaning.name is not None and self.catalog.term_exists(meaning.name)
        ):
            self.problems.add(
                where,
                f"payment terms '{name}' have no {self.label} term"
                + (f" ('{meaning.name}' does not exist)" if meaning.name else ""),
                f"create the term in {self.label} or fix terms.values in your mapping file",
            )
            return None, None
        return meaning.name, meaning.days_until_due

    def _doc_number(self) -> str | None:
        value = self.value(self.spec.invoice.doc_number)
        if value is None or value == "":
            return None
        text = str(value)
        limit = self.rules.doc_number_max
        if limit is not None and len(text) > limit:
            self.problems.add(
                "invoice.doc_number",
                f"'{text}' is longer than the {limit} characters {self.label} allows",
                f"shorten invoice.doc_number in your mapping file (e.g. {{truncate: {limit}}})",
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
                "give the account a name in the deal source (or fix customer.name in the mapping)",
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


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        errors = exc.errors(include_input=False, include_url=False)
        return str(errors[0]["msg"]) if errors else str(exc)
    return str(exc)
