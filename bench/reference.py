"""The per-record reference pipeline: the same job, written the way templates do it.

What integration templates and tutorials for "closed-won deal → invoice" do, with the
same SDKs billsync uses (simple-salesforce, python-quickbooks + intuit-oauth, stripe
`StripeClient`) against the same sandbox: one loop over the won deals that have no
invoice yet, and for each deal

1. one Salesforce query for its line items;
2. one customer lookup in the target (QuickBooks: query by DisplayName; Stripe: list
   by email, which is strongly consistent), and a create when there is none;
3. one invoice create (QuickBooks: one Invoice with a discount line; Stripe: create,
   add_lines with every line in one call, finalize, send — Stripe has no single call);
4. one Opportunity update writing the invoice id, number and status back.

It is a baseline, not a straw man: the catalogue (QuickBooks Items and the Net 30
term, Stripe Products) is read once, writes carry idempotency keys / request ids, rate
limits are waited out, totals are exact to the minor unit and a re-run skips invoiced
deals. What it does not do is batch, remember customers, or pull incrementally.

    python -m bench.reference --config billsync.yaml    # prints a JSON summary line
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeVar, cast

import requests
import stripe
import yaml
from intuitlib.client import AuthClient
from quickbooks import QuickBooks
from quickbooks.exceptions import QuickbooksException
from quickbooks.objects.base import Address, CustomerMemo, EmailAddress
from quickbooks.objects.customer import Customer
from quickbooks.objects.detailline import (
    DiscountLine,
    DiscountLineDetail,
    SalesItemLine,
    SalesItemLineDetail,
)
from quickbooks.objects.invoice import Invoice
from quickbooks.objects.item import Item
from quickbooks.objects.term import Term
from simple_salesforce.api import Salesforce, SFType

T = TypeVar("T")
ZERO_DECIMAL = {"JPY"}  # the dataset's only zero-decimal currency
DEALS_SOQL = (
    "SELECT Id, Name, AccountId, Account.Name, Account.Billing_Email__c, "
    "Account.BillingStreet, Account.BillingCity, Account.BillingPostalCode, "
    "Account.BillingCountry, CurrencyIsoCode, Billing_Platform__c FROM Opportunity "
    "WHERE IsWon = true AND Billing_Invoice_Id__c = null ORDER BY CloseDate, Id"
)
LINES_SOQL = (
    "SELECT Id, ProductCode, Description, Quantity, UnitPrice, Discount, ServiceDate "
    "FROM OpportunityLineItem WHERE OpportunityId = '{}' ORDER BY Id"
)


def patiently(call: Callable[[], T], attempts: int = 8) -> T:
    """Wait out rate limits (429, QuickBooks' throttle page) and dropped connections."""
    for attempt in range(attempts):
        try:
            return call()
        except (stripe.RateLimitError, stripe.APIConnectionError) as exc:
            retry_after = (exc.headers or {}).get("retry-after") if exc.headers else None
            wait = int(retry_after) if retry_after else 2**attempt
        except QuickbooksException as exc:
            if "ThrottleExceeded" not in str(exc.message) and "3001" not in str(exc.detail):
                raise
            wait = 60  # Intuit's guidance after a throttle
        except requests.ConnectionError:
            wait = 2**attempt
        if attempt + 1 < attempts:
            time.sleep(wait)
    return call()


def connect(config: dict[str, Any]) -> tuple[Salesforce, QuickBooks, stripe.StripeClient]:
    sf_conf, qb_conf, st_conf = config["salesforce"], config["quickbooks"], config["stripe"]
    token = requests.post(
        f"{sf_conf['instance_url']}/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": sf_conf["client_id"],
            "client_secret": sf_conf["client_secret"],
        },
        verify=sf_conf["ca_bundle"],
        timeout=30,
    ).json()
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise replace the local CA
    session.verify = sf_conf["ca_bundle"]
    sf = Salesforce(
        instance_url=token["instance_url"],
        session_id=token["access_token"],
        version=sf_conf["api_version"],
        session=session,
    )
    # intuitlib reads the discovery document from the URL given as the environment;
    # the sandbox speaks plain http on 127.0.0.1, which requests-oauthlib refuses
    # unless told this is a local test.
    os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    auth = AuthClient(
        qb_conf["client_id"],
        qb_conf["client_secret"],
        qb_conf.get("redirect_uri") or "http://127.0.0.1/callback",
        qb_conf["discovery_url"],
    )
    qb = QuickBooks(
        auth_client=auth,
        refresh_token=qb_conf["refresh_token"],
        company_id=str(qb_conf["realm_id"]),
        minorversion=75,
        use_decimal=True,
    )
    qb.api_url_v3 = qb.sandbox_api_url_v3 = qb_conf["base_url"]
    client = stripe.StripeClient(
        st_conf["api_key"], base_addresses={"api": st_conf["base_url"]}, max_network_retries=2
    )
    return sf, qb, client


def line_amount(line: dict[str, Any], currency: str) -> Decimal:
    exact = (
        Decimal(str(line["Quantity"]))
        * Decimal(str(line["UnitPrice"]))
        * (100 - Decimal(str(line.get("Discount") or 0)))
        / 100
    )
    unit = Decimal(1) if currency in ZERO_DECIMAL else Decimal("0.01")
    return exact.quantize(unit, rounding=ROUND_HALF_UP)


def minor(amount: Decimal, currency: str) -> int:
    return int(amount if currency in ZERO_DECIMAL else amount * 100)


class ReferencePipeline:
    def __init__(self, sf: Salesforce, qb: QuickBooks, client: stripe.StripeClient) -> None:
        self.sf, self.qb, self.stripe = sf, qb, client
        items = patiently(lambda: Item.all(max_results=1000, qb=qb))
        self.items = {item.Sku: item for item in items}
        self.net30 = patiently(lambda: Term.filter(Name="Net 30", qb=qb))[0]
        products = patiently(lambda: client.v1.products.list(params={"limit": 100}))
        self.products = {p.metadata["product_code"]: p.id for p in products.data}
        self.invoiced = self.failed = 0

    def run(self) -> None:
        for deal in self.sf.query_all_iter(DEALS_SOQL):
            try:
                self.invoice(deal)
                self.invoiced += 1
            except Exception as exc:  # a template logs the deal and carries on
                self.failed += 1
                print(f"deal {deal['Id']} failed: {exc}", file=sys.stderr)

    def invoice(self, deal: dict[str, Any]) -> None:
        lines = patiently(lambda: self.sf.query(LINES_SOQL.format(deal["Id"])))["records"]
        if deal["Billing_Platform__c"] == "QuickBooks":
            invoice_id, number = self.quickbooks_invoice(deal, lines)
        else:
            invoice_id, number = self.stripe_invoice(deal, lines)
        fields = {
            "Billing_Invoice_Id__c": invoice_id,
            "Billing_Invoice_Number__c": number,
            "Billing_Status__c": "Invoiced",
            "Billing_Synced_At__c": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        opportunity = cast(SFType, self.sf.Opportunity)
        patiently(lambda: opportunity.update(deal["Id"], fields))

    # --- QuickBooks ----------------------------------------------------------------

    def quickbooks_customer(self, account: dict[str, Any], account_id: str) -> Customer:
        found = patiently(lambda: Customer.filter(DisplayName=account["Name"], qb=self.qb))
        if found:
            return found[0]
        customer = Customer()
        customer.DisplayName = account["Name"]
        customer.CompanyName = account["Name"]
        customer.PrimaryEmailAddr = EmailAddress()
        customer.PrimaryEmailAddr.Address = account["Billing_Email__c"]
        customer.BillAddr = Address()
        customer.BillAddr.Line1 = account["BillingStreet"]
        customer.BillAddr.City = account["BillingCity"]
        customer.BillAddr.PostalCode = account["BillingPostalCode"]
        customer.BillAddr.Country = account["BillingCountry"]
        return patiently(lambda: customer.save(qb=self.qb, request_id=f"cust-{account_id}"))

    def quickbooks_invoice(
        self, deal: dict[str, Any], lines: list[dict[str, Any]]
    ) -> tuple[str, str]:
        customer = self.quickbooks_customer(deal["Account"], deal["AccountId"])
        invoice = Invoice()
        invoice.CustomerRef = customer.to_ref()
        invoice.DocNumber = deal["Id"][:21]
        invoice.PrivateNote = f"Salesforce opportunity {deal['Id']}"
        invoice.CustomerMemo = CustomerMemo()
        invoice.CustomerMemo.value = deal["Name"]
        invoice.SalesTermRef = self.net30.to_ref()
        invoice.BillEmail = EmailAddress()
        invoice.BillEmail.Address = deal["Account"]["Billing_Email__c"]
        discount = Decimal(0)
        for line in lines:
            quantity, price = Decimal(str(line["Quantity"])), Decimal(str(line["UnitPrice"]))
            gross = (quantity * price).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
            discount += gross - line_amount(line, "USD")
            sales = SalesItemLine()
            sales.Amount = gross
            sales.Description = line["Description"]
            sales.SalesItemLineDetail = SalesItemLineDetail()
            sales.SalesItemLineDetail.ItemRef = self.items[line["ProductCode"]].to_ref()
            sales.SalesItemLineDetail.Qty = quantity
            sales.SalesItemLineDetail.UnitPrice = price
            sales.SalesItemLineDetail.ServiceDate = line["ServiceDate"]
            invoice.Line.append(sales)
        if discount:
            off = DiscountLine()
            off.Amount = discount
            off.DiscountLineDetail = DiscountLineDetail()
            off.DiscountLineDetail.PercentBased = False
            invoice.Line.append(off)
        saved = patiently(lambda: invoice.save(qb=self.qb, request_id=f"inv-{deal['Id']}"))
        return str(saved.Id), str(saved.DocNumber)

    # --- Stripe --------------------------------------------------------------------

    def stripe_customer(self, account: dict[str, Any], account_id: str) -> str:
        email = account["Billing_Email__c"]
        found = patiently(
            lambda: self.stripe.v1.customers.list(params={"email": email, "limit": 1})
        )
        if found.data:
            return str(found.data[0].id)
        params: Any = {
            "name": account["Name"],
            "email": email,
            "metadata": {"sf_account": account_id},
        }
        created = patiently(
            lambda: self.stripe.v1.customers.create(
                params=params, options={"idempotency_key": f"cust-{account_id}"}
            )
        )
        return str(created.id)

    def stripe_invoice(self, deal: dict[str, Any], lines: list[dict[str, Any]]) -> tuple[str, str]:
        currency = deal["CurrencyIsoCode"]
        customer = self.stripe_customer(deal["Account"], deal["AccountId"])
        key = f"ref-{deal['Id']}"
        invoices = self.stripe.v1.invoices
        draft = patiently(
            lambda: invoices.create(
                params={
                    "customer": customer,
                    "currency": currency.lower(),
                    "collection_method": "send_invoice",
                    "days_until_due": 30,
                    "description": deal["Name"],
                    "metadata": {"salesforce_opportunity_id": deal["Id"]},
                },
                options={"idempotency_key": f"{key}-create"},
            )
        )
        items: Any = [self._stripe_line(line, currency) for line in lines]
        patiently(
            lambda: invoices.add_lines(
                draft.id, params={"lines": items}, options={"idempotency_key": f"{key}-lines"}
            )
        )
        patiently(
            lambda: invoices.finalize_invoice(
                draft.id, options={"idempotency_key": f"{key}-finalize"}
            )
        )
        sent = patiently(
            lambda: invoices.send_invoice(draft.id, options={"idempotency_key": f"{key}-send"})
        )
        return str(sent.id), str(sent.number)

    def _stripe_line(self, line: dict[str, Any], currency: str) -> dict[str, Any]:
        quantity = Decimal(str(line["Quantity"]))
        price: dict[str, Any] = {
            "currency": currency.lower(),
            "product": self.products[line["ProductCode"]],
        }
        if not line.get("Discount") and quantity == quantity.to_integral_value():
            price["unit_amount"] = minor(Decimal(str(line["UnitPrice"])), currency)
            return {
                "price_data": price,
                "quantity": int(quantity),
                "description": line["Description"],
            }
        # Discounted or fractional: the line's amount as one unit, the detail in words.
        price["unit_amount"] = minor(line_amount(line, currency), currency)
        detail = f"{quantity} x {line['UnitPrice']} less {line.get('Discount') or 0}%"
        return {
            "price_data": price,
            "quantity": 1,
            "description": f"{line['Description']} ({detail})",
        }


def main() -> None:
    parser = argparse.ArgumentParser(description="The per-record reference pipeline.")
    parser.add_argument("--config", required=True, help="billsync config the sandbox wrote")
    args = parser.parse_args()
    with open(args.config, encoding="utf-8") as fh:
        config = yaml.safe_load(fh)
    started = time.monotonic()
    pipeline = ReferencePipeline(*connect(config))
    pipeline.run()
    summary = {
        "invoices_created": pipeline.invoiced,
        "failures": pipeline.failed,
        "duration_s": round(time.monotonic() - started, 3),
    }
    print(json.dumps(summary))
    raise SystemExit(1 if pipeline.failed else 0)


if __name__ == "__main__":
    main()
