"""describeGlobal, sObject basic info and describe, trimmed to what clients read.

billsync can check at start-up that the write-back fields exist and are updateable;
simple-salesforce's `sf.describe()` and `sf.Opportunity.describe()` land here.
"""

from __future__ import annotations

from typing import Any

from billsync.sandbox.salesforce.schema import FieldDef, ObjectDef, Schema

_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
    "currency": "xsd:double",
    "double": "xsd:double",
    "percent": "xsd:double",
    "int": "xsd:int",
}


def _urls(definition: ObjectDef, version: str) -> dict[str, str]:
    base = f"/services/data/v{version}/sobjects/{definition.name}"
    return {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"}


def summary(definition: ObjectDef, version: str) -> dict[str, Any]:
    return {
        "name": definition.name,
        "label": definition.label,
        "keyPrefix": definition.prefix,
        "custom": False,
        "queryable": True,
        "createable": True,
        "updateable": True,
        "deletable": True,
        "urls": _urls(definition, version),
    }


def describe_global(schema: Schema, version: str) -> dict[str, Any]:
    return {
        "encoding": "UTF-8",
        "maxBatchSize": 200,
        "sobjects": [summary(d, version) for d in schema.objects.values()],
    }


def _field(definition: FieldDef) -> dict[str, Any]:
    numeric = definition.type in ("currency", "double", "percent")
    return {
        "name": definition.name,
        "label": definition.label,
        "type": "datetime" if definition.type == "datetime" else definition.type,
        "soapType": _SOAP_TYPES.get(definition.type, "xsd:string"),
        "length": definition.length,
        "precision": 18 if numeric else 0,
        "scale": definition.scale if numeric else 0,
        "custom": definition.custom,
        "createable": definition.createable,
        "updateable": definition.updateable,
        "nillable": definition.type != "boolean" and definition.name != "Id",
        "filterable": not (definition.type == "textarea" and definition.length > 255),
        "referenceTo": [definition.reference_to] if definition.reference_to else [],
        "relationshipName": definition.relationship,
    }


def describe(schema: Schema, definition: ObjectDef, version: str) -> dict[str, Any]:
    return {
        **summary(definition, version),
        "fields": [_field(f) for f in definition.fields.values()],
        "childRelationships": [
            {
                "childSObject": child.child,
                "field": child.field,
                "relationshipName": child.name,
                "cascadeDelete": child.child == "OpportunityLineItem",
            }
            for child in definition.children.values()
        ],
    }
