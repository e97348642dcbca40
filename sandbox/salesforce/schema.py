"""The org's data model: objects, fields, relationships (what describe() would say).

Field and object names are case-insensitive in SOQL and in request bodies, but the API
always answers with the canonical spelling, so every lookup goes through a lower-case
index. Custom fields come from the seed's `fields` section; the billsync write-back
fields exist by default, as they would in an org where the package is installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, cast

from billsync.sandbox.salesforce.ids import PREFIXES

FieldType = Literal[
    "id",
    "reference",
    "string",
    "textarea",
    "url",
    "email",
    "picklist",
    "boolean",
    "date",
    "datetime",
    "currency",
    "double",
    "percent",
    "int",
]
NUMERIC_TYPES = frozenset({"currency", "double", "percent"})
TEXT_TYPES = frozenset({"string", "textarea", "url", "email", "picklist"})
CUSTOM_TYPES: frozenset[str] = TEXT_TYPES | NUMERIC_TYPES | {"boolean", "date", "datetime", "int"}


@dataclass(frozen=True)
class FieldDef:
    name: str
    type: FieldType
    label: str = ""
    createable: bool = True
    updateable: bool = True
    length: int = 0
    scale: int = 2
    custom: bool = False
    reference_to: str | None = None
    relationship: str | None = None
    """The parent relationship name of a reference field (`AccountId` -> `Account`)."""

    @property
    def writable(self) -> bool:
        return self.createable or self.updateable


@dataclass(frozen=True)
class ChildRelationship:
    name: str
    child: str
    field: str


@dataclass
class ObjectDef:
    name: str
    prefix: str
    label: str
    required: tuple[str, ...] = ()
    fields: dict[str, FieldDef] = field(default_factory=dict)
    children: dict[str, ChildRelationship] = field(default_factory=dict)
    _lower: dict[str, str] = field(default_factory=dict)
    _parents: dict[str, FieldDef] = field(default_factory=dict)

    def add(self, definition: FieldDef) -> None:
        self.fields[definition.name] = definition
        self._lower[definition.name.lower()] = definition.name
        if definition.relationship:
            self._parents[definition.relationship.lower()] = definition

    def remove(self, name: str) -> None:
        definition = self.fields.pop(name, None)
        self._lower.pop(name.lower(), None)
        if definition and definition.relationship:
            self._parents.pop(definition.relationship.lower(), None)

    def field(self, name: str) -> FieldDef | None:
        canonical = self._lower.get(name.lower())
        return self.fields[canonical] if canonical else None

    def parent(self, relationship: str) -> FieldDef | None:
        """The reference field behind a parent relationship name, e.g. 'account'."""
        return self._parents.get(relationship.lower())

    def child(self, relationship: str) -> ChildRelationship | None:
        return self.children.get(relationship.lower())


def _f(name: str, kind: FieldType, label: str = "", **options: Any) -> FieldDef:
    return FieldDef(name, kind, label or name, **options)


def _readonly(name: str, kind: FieldType, label: str = "", **options: Any) -> FieldDef:
    return _f(name, kind, label, createable=False, updateable=False, **options)


def _system_fields() -> list[FieldDef]:
    return [
        _readonly("Id", "id", "Record ID", length=18),
        _readonly("IsDeleted", "boolean", "Deleted"),
        _readonly("CreatedDate", "datetime", "Created Date"),
        _readonly("LastModifiedDate", "datetime", "Last Modified Date"),
        _readonly("SystemModstamp", "datetime", "System Modstamp"),
    ]


# The billsync write-back fields (see the Salesforce connector issue) plus the routing
# field; a real org gets them from the billsync package.
BILLSYNC_FIELDS = (
    _f("Billing_Invoice_Id__c", "string", "Billing Invoice Id", length=255, custom=True),
    _f("Billing_Invoice_Number__c", "string", "Billing Invoice Number", length=255, custom=True),
    _f("Billing_Invoice_URL__c", "url", "Billing Invoice URL", length=255, custom=True),
    _f("Billing_Status__c", "picklist", "Billing Status", length=255, custom=True),
    _f("Billing_Amount_Paid__c", "currency", "Billing Amount Paid", custom=True),
    _f("Billing_Balance_Due__c", "currency", "Billing Balance Due", custom=True),
    _f("Billing_Last_Payment_Date__c", "date", "Billing Last Payment Date", custom=True),
    _f("Billing_Amount_Refunded__c", "currency", "Billing Amount Refunded", custom=True),
    _f("Billing_Amount_Credited__c", "currency", "Billing Amount Credited", custom=True),
    _f("Billing_Tax__c", "currency", "Billing Tax", custom=True),
    _f("Billing_Total__c", "currency", "Billing Total", custom=True),
    _f("Billing_Due_Date__c", "date", "Billing Due Date", custom=True),
    # A long text area, so a full error message fits.
    _f("Billing_Sync_Error__c", "textarea", "Billing Sync Error", length=32768, custom=True),
    _f("Billing_Synced_At__c", "datetime", "Billing Synced At", custom=True),
    _f("Billing_Platform__c", "picklist", "Billing Platform", length=255, custom=True),
)


def _account() -> ObjectDef:
    account = ObjectDef("Account", PREFIXES["Account"], "Account", required=("Name",))
    for definition in [
        *_system_fields(),
        _f("Name", "string", "Account Name", length=255),
        _f("AccountNumber", "string", "Account Number", length=40),
        _f("Type", "picklist", "Account Type", length=255),
        _f("Industry", "picklist", length=255),
        _f("Phone", "string", "Account Phone", length=40),
        _f("Website", "url", length=255),
        _f("Description", "textarea", "Account Description", length=32000),
        _f("BillingStreet", "textarea", "Billing Street", length=255),
        _f("BillingCity", "string", "Billing City", length=40),
        _f("BillingState", "string", "Billing State/Province", length=80),
        _f("BillingPostalCode", "string", "Billing Zip/Postal Code", length=20),
        _f("BillingCountry", "string", "Billing Country", length=80),
        _f("Billing_Email__c", "email", "Billing Email", length=80, custom=True),
    ]:
        account.add(definition)
    account.children["opportunities"] = ChildRelationship(
        "Opportunities", "Opportunity", "AccountId"
    )
    return account


def _product() -> ObjectDef:
    product = ObjectDef("Product2", PREFIXES["Product2"], "Product", required=("Name",))
    for definition in [
        *_system_fields(),
        _f("Name", "string", "Product Name", length=255),
        _f("ProductCode", "string", "Product Code", length=255),
        _f("Description", "textarea", "Product Description", length=4000),
        _f("IsActive", "boolean", "Active"),
        _f("Family", "picklist", "Product Family", length=255),
    ]:
        product.add(definition)
    return product


def _opportunity() -> ObjectDef:
    required = ("Name", "StageName", "CloseDate")
    opportunity = ObjectDef("Opportunity", PREFIXES["Opportunity"], "Opportunity", required)
    for definition in [
        *_system_fields(),
        _f("Name", "string", "Name", length=120),
        _f("AccountId", "reference", "Account ID", reference_to="Account", relationship="Account"),
        _f("StageName", "picklist", "Stage", length=255),
        _f("CloseDate", "date", "Close Date"),
        # Rolls up from the lines once the deal has products (see store.py).
        _f("Amount", "currency", "Amount"),
        _f("Type", "picklist", "Opportunity Type", length=255),
        _f("LeadSource", "picklist", "Lead Source", length=255),
        _f("NextStep", "string", "Next Step", length=255),
        _f("Description", "textarea", "Description", length=32000),
        _readonly("IsWon", "boolean", "Won"),
        _readonly("IsClosed", "boolean", "Closed"),
        _readonly("HasOpportunityLineItem", "boolean", "Has Line Item"),
        *BILLSYNC_FIELDS,
    ]:
        opportunity.add(definition)
    opportunity.children["opportunitylineitems"] = ChildRelationship(
        "OpportunityLineItems", "OpportunityLineItem", "OpportunityId"
    )
    return opportunity


def _line_item() -> ObjectDef:
    line = ObjectDef(
        "OpportunityLineItem",
        PREFIXES["OpportunityLineItem"],
        "Opportunity Product",
        required=("OpportunityId", "Quantity"),
    )
    for definition in [
        *_system_fields(),
        _f(
            "OpportunityId",
            "reference",
            "Opportunity ID",
            updateable=False,
            reference_to="Opportunity",
            relationship="Opportunity",
        ),
        _f(
            "Product2Id",
            "reference",
            "Product ID",
            updateable=False,
            reference_to="Product2",
            relationship="Product2",
        ),
        _f("PricebookEntryId", "id", "Price Book Entry ID", updateable=False, length=18),
        # Copied from the product (or the price book entry) by the platform.
        _readonly("ProductCode", "string", "Product Code", length=255),
        _readonly("Name", "string", "Opportunity Product Name", length=376),
        _f("Quantity", "double", "Quantity"),
        _f("UnitPrice", "currency", "Sales Price"),
        _readonly("ListPrice", "currency", "List Price"),
        _f("TotalPrice", "currency", "Total Price"),
        _f("Discount", "percent", "Discount"),
        _f("ServiceDate", "date", "Date"),
        _f("Description", "string", "Line Description", length=255),
        _f("SortOrder", "int", "Sort Order", scale=0),
    ]:
        line.add(definition)
    return line


class Schema:
    """Every object of the org; rebuilt from scratch on reset."""

    def __init__(self, multi_currency: bool = True) -> None:
        self.objects: dict[str, ObjectDef] = {}
        for definition in (_account(), _product(), _opportunity(), _line_item()):
            self.objects[definition.name.lower()] = definition
        self.multi_currency = False
        self.set_multi_currency(multi_currency)

    def object(self, name: str) -> ObjectDef | None:
        return self.objects.get(name.lower())

    def get(self, name: str) -> ObjectDef:
        return self.objects[name.lower()]

    def by_prefix(self, record_id: str) -> ObjectDef | None:
        for definition in self.objects.values():
            if record_id.startswith(definition.prefix):
                return definition
        return None

    def set_multi_currency(self, enabled: bool) -> None:
        """CurrencyIsoCode exists only in multi-currency orgs; elsewhere it is INVALID_FIELD."""
        self.multi_currency = enabled
        for definition in self.objects.values():
            if enabled:
                # A line's currency is its opportunity's: read-only there.
                writable = definition.name != "OpportunityLineItem"
                definition.add(
                    _f(
                        "CurrencyIsoCode",
                        "picklist",
                        "Currency ISO Code",
                        length=3,
                        createable=writable,
                        updateable=writable,
                    )
                )
            else:
                definition.remove("CurrencyIsoCode")

    def add_custom_fields(self, spec: dict[str, Any]) -> None:
        """The seed's `fields`: {"Opportunity": ["PO__c", {"name": "X__c", "type": "date"}]}."""
        for object_name, entries in spec.items():
            definition = self.object(object_name)
            if definition is None:
                raise ValueError(f"fields: unknown object {object_name!r}")
            for entry in entries:
                name, kind, length = _custom_spec(entry)
                if definition.field(name):
                    continue
                label = name.removesuffix("__c").replace("_", " ")
                definition.add(FieldDef(name, kind, label, length=length, custom=True))


def _custom_spec(entry: Any) -> tuple[str, FieldType, int]:
    if isinstance(entry, str):
        name, kind, length = entry, "string", 255
    elif isinstance(entry, dict) and isinstance(entry.get("name"), str):
        name = entry["name"]
        kind = entry.get("type", "string")
        length = int(entry.get("length", 255))
    else:
        raise ValueError(f"fields: expected a name or {{name, type}}, got {entry!r}")
    if not name.endswith("__c") or not name.removesuffix("__c").replace("_", "").isalnum():
        raise ValueError(f"fields: custom field names end in __c: {name!r}")
    if kind not in CUSTOM_TYPES:
        raise ValueError(f"fields: {name}: unsupported type {kind!r}")
    return name, cast(FieldType, kind), length
