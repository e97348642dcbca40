"""API calls are counted per system by host, whatever library sends them."""

from __future__ import annotations

from pathlib import Path

import requests
import responses

from billsync.config.loader import load_settings
from billsync.sync.apicalls import counting_api_calls, hosts_from_settings, system_for


def test_system_for_configured_and_vendor_hosts() -> None:
    # the hosts come from the connectors' specs: configured URLs, then public hosts
    settings = load_settings(
        environ={"BILLSYNC_SALESFORCE__INSTANCE_URL": "https://127.0.0.1:4443"}
    )
    hosts = hosts_from_settings(settings)
    assert system_for("127.0.0.1:4443", hosts) == "salesforce"
    assert system_for("acme.my.salesforce.com", hosts) == "salesforce"
    assert system_for("quickbooks.api.intuit.com", hosts) == "quickbooks"
    assert system_for("api.stripe.com", hosts) == "stripe"
    assert system_for("example.org", hosts) == "other"


@responses.activate
def test_counting_wraps_and_unwraps_requests() -> None:
    responses.get("https://api.stripe.com/v1/customers", json={})
    responses.get("https://acme.my.salesforce.com/services/data/", json=[])
    original = requests.Session.send
    with counting_api_calls(hosts_from_settings(load_settings(environ={}))) as calls:
        requests.get("https://api.stripe.com/v1/customers", timeout=5)
        requests.get("https://api.stripe.com/v1/customers", timeout=5)
        requests.get("https://acme.my.salesforce.com/services/data/", timeout=5)
    assert dict(calls) == {"stripe": 2, "salesforce": 1}
    assert requests.Session.send is original


@responses.activate
def test_a_session_that_names_its_connection_is_counted_by_it(tmp_path: Path) -> None:
    """Two companies of one kind call the same host: the session says whose call it is;
    a named connection's own URL counts by its name."""
    from billsync.core.http import VendorSession

    config = tmp_path / "billsync.yaml"
    config.write_text(
        "connections:\n"
        "  stripe_eu: {kind: stripe, api_key: sk_test_eu0123456789, base_url: 'http://127.0.0.1:9'}\n"
    )
    hosts = hosts_from_settings(load_settings(config, environ={}))
    assert system_for("127.0.0.1:9", hosts) == "stripe_eu"
    responses.get("https://api.stripe.com/v1/invoices", json={})
    with counting_api_calls(hosts) as calls:
        VendorSession(connection="stripe_us").get("https://api.stripe.com/v1/invoices")
        VendorSession(connection="stripe_eu").get("https://api.stripe.com/v1/invoices")
        VendorSession().get("https://api.stripe.com/v1/invoices")
    assert dict(calls) == {"stripe_us": 1, "stripe_eu": 1, "stripe": 1}
