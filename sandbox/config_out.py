"""The billsync configuration (and mapping file) that points every connector at the sandbox.

In the single-company profile each system is the plain section named after it
(`quickbooks:`, `stripe:`), exactly as billsync configs have always been. With several
companies, each is a billsync connection, `connections.<name>: {kind: <system>, ...}`
with the same keys as the plain section, and a mapping file routes deals to them by the
Salesforce field `Billing_Platform__c`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from billsync.sandbox.core import SandboxSystem, ServesCompanies
from billsync.sandbox.profiles import Profile

# Every seeded deal is the sandbox's to bill: an explicit start for the first run (a real
# org's config chooses its own date, or `run --backfill`).
SANDBOX_START = "2000-01-01T00:00:00Z"
MAPPING_FILE = "billsync-mapping.yaml"


def billsync_config(
    systems: dict[str, SandboxSystem], profile: Profile, directory: Path
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "ledger": {"url": f"sqlite:///{(directory / 'billsync.db').resolve()}"},
        "sync": {"default_target": "quickbooks", "start_from": SANDBOX_START},
    }
    connections: dict[str, Any] = {}
    for kind, system in systems.items():
        if isinstance(system, ServesCompanies):
            sections = system.connection_sections()
        else:
            sections = {kind: system.config_section()}
        for name, section in sections.items():
            if name == kind:
                config[kind] = section
            else:
                connections[name] = {"kind": kind, **section}
    if profile.multi:
        config["sync"] = {
            "source": "salesforce",
            "targets": [company.connection for company in profile.companies],
            "default_target": profile.companies[0].connection,
            "start_from": SANDBOX_START,
            "mapping_files": [str((directory / MAPPING_FILE).resolve())],
        }
        config["connections"] = connections
    return config


def routing_mapping(profile: Profile) -> dict[str, Any] | None:
    """The mapping file routing deals to the profile's companies (None: the default
    mapping already routes `QuickBooks`/`Stripe` to the single-company sections)."""
    if not profile.multi:
        return None
    values = {company.connection: [company.label] for company in profile.companies}
    return {"version": 1, "routing": {"values": values}}
