"""`billsync sandbox serve|generate`: the local stand-ins for the three vendor APIs."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Local stand-ins for Salesforce, QuickBooks Online and Stripe.")


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="Admin port (0 = free ports); the systems take the next three.")
    ] = 0,
    seed: Annotated[Path | None, typer.Option(help="Seed file (JSON) to load at start.")] = None,
    webhook_url: Annotated[
        str | None,
        typer.Option(
            help="Base URL of `billsync serve`; webhooks go to <url>/webhooks/<provider>."
        ),
    ] = None,
    config_out: Annotated[
        Path | None, typer.Option(help="Write a billsync config pointing at this sandbox.")
    ] = None,
    ready_file: Annotated[
        Path | None, typer.Option(help="Write the ready JSON line here once listening.")
    ] = None,
    rate_limits: Annotated[
        str, typer.Option(help="real, off, or scaled:K (vendor budgets K times faster).")
    ] = "real",
    state_dir: Annotated[
        Path | None, typer.Option(help="Where the local CA and other files go (default: temp).")
    ] = None,
    search_delay_s: Annotated[
        float, typer.Option(help="Stripe search consistency delay in seconds.")  # money-ok
    ] = 1.0,
    profile: Annotated[
        str,
        typer.Option(help="single (one company per vendor) or multi (2 QuickBooks, 2 Stripe)."),
    ] = "single",
) -> None:
    """Serve the sandbox until interrupted; prints one JSON line when ready."""
    from billsync.sandbox.profiles import profile_named
    from billsync.sandbox.server import SandboxOptions, parse_rate_limits
    from billsync.sandbox.server import serve as serve_sandbox

    try:
        mode = parse_rate_limits(rate_limits)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--rate-limits") from None
    try:
        companies = profile_named(profile)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--profile") from None
    if seed is not None:
        try:
            json.loads(seed.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise typer.BadParameter(f"cannot load {seed}: {exc}", param_hint="--seed") from None
    options = SandboxOptions(
        host=host,
        port=port,
        seed_file=seed,
        webhook_url=webhook_url,
        config_out=config_out,
        ready_file=ready_file,
        rate_limits=mode,
        state_dir=state_dir,
        profile=companies,
        system_options={"search_delay_s": search_delay_s},
    )
    asyncio.run(serve_sandbox(options))


@app.command("generate")
def generate(
    deals: Annotated[int, typer.Option(min=1, help="How many Opportunities to generate.")],
    out: Annotated[Path, typer.Option(help="Seed file to write (JSON).")],
    random_seed: Annotated[int, typer.Option(help="Same seed, same file.")] = 1,
    profile: Annotated[
        str, typer.Option(help="The `serve --profile` the seed is for: single or multi.")
    ] = "single",
) -> None:
    """Write a realistic seed file: repeat customers, currencies, discounts, both targets."""
    from billsync.sandbox import jsonutil
    from billsync.sandbox.generate import GenerateOptions, generate_seed
    from billsync.sandbox.profiles import profile_named

    try:
        companies = profile_named(profile)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--profile") from None
    seed = generate_seed(GenerateOptions(deals=deals, random_seed=random_seed, profile=companies))
    out.write_text(jsonutil.dumps(seed, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    opportunities = seed["salesforce"]["Opportunity"]
    lines = sum(len(o.get("OpportunityLineItems", [])) for o in opportunities)
    typer.echo(f"wrote {out}: {len(opportunities)} deals, {lines} line items")
