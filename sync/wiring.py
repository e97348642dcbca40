"""Builds the connectors a command needs from settings and mapping files.

Explicit wiring, one place: commands ask for a deal source or the target catalogs and
get objects that speak the protocols of `connectors.base`; nothing else in the engine
imports a connector package.
"""

from __future__ import annotations

from config.settings import Settings
from connectors.salesforce.fields import DealFieldPaths, WriteBackFields
from connectors.salesforce.source import SalesforceDealSource
from mappings.catalog import MappingOnlyCatalog, TargetCatalog
from mappings.loader import LoadedMapping, load_mappings
from mappings.plan import Planner
from sync.idempotency import invoice_key


def mapping_for(settings: Settings) -> LoadedMapping:
    return load_mappings(list(settings.sync.mapping_files))


def deal_source(settings: Settings, mapping: LoadedMapping) -> SalesforceDealSource:
    spec = mapping.spec
    return SalesforceDealSource(
        settings.salesforce,
        company_currency=settings.sync.company_currency,
        field_paths=DealFieldPaths(**spec.source.model_dump()),
        writeback_fields=WriteBackFields(**spec.writeback.model_dump()),
        start_from=settings.salesforce.start_from,
    )


def target_catalogs(settings: Settings) -> dict[str, TargetCatalog]:
    """The catalog of every enabled target.

    Until the QuickBooks and Stripe connectors provide their own, the catalogs answer
    from the mapping alone: product refs are marked `unverified:` in the plan.
    """
    catalogs: dict[str, TargetCatalog] = {}
    if settings.quickbooks.enabled:
        catalogs["quickbooks"] = MappingOnlyCatalog("quickbooks")
    if settings.stripe.enabled:
        catalogs["stripe"] = MappingOnlyCatalog("stripe")
    return catalogs


def planner_for(settings: Settings, mapping: LoadedMapping) -> Planner:
    return Planner(
        mapping=mapping,
        catalogs=target_catalogs(settings),
        default_target=settings.sync.default_target,
        idempotency_key=invoice_key,
    )
