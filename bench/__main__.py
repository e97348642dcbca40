"""`python -m bench`: run the benchmark scenarios of issue 10 against the sandbox.

    python -m bench [--quick] [--only N ...] [--record] [--workdir DIR]

Each scenario prints its table as it finishes; ``--record`` appends the whole set, with
the date, the exact command and the machine, to bench/RESULTS.md. Exit code 1 when a
scenario crashed or produced a wrong result (a missing or duplicate invoice, a wrong
total); a missed target is a finding, not a failure.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import (
    FULL,
    QUICK,
    Context,
    Section,
    append_results,
    code_fingerprint,
    code_note,
    load_note,
    machine,
)
from bench.scenarios import SCENARIOS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (CI smoke test)")
    parser.add_argument("--only", type=int, action="append", help="scenario number (repeatable)")
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    parser.add_argument("--workdir", type=Path, help="keep sandboxes, seeds and logs here")
    args = parser.parse_args(argv)
    chosen = [s for s in SCENARIOS if not args.only or s.number in args.only]
    unknown = set(args.only or ()) - {s.number for s in SCENARIOS}
    if unknown:
        parser.error(f"no scenario {sorted(unknown)}; choose from 1-{len(SCENARIOS)}")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="billsync-bench-"))
    ctx = Context(QUICK if args.quick else FULL, workdir, args.quick)
    started_at, started = datetime.now(UTC), time.monotonic()
    load = load_note()
    code, fingerprint = code_note(), code_fingerprint()
    print(f"billsync bench ({'quick' if args.quick else 'full'}) in {workdir}; {load}", flush=True)
    sections: list[Section] = []
    failed = False
    for scenario in chosen:
        t0 = time.monotonic()
        print(f"\n== {scenario.number}. {scenario.title} …", flush=True)
        try:
            section = scenario.run(ctx)
        except Exception as exc:  # report the crash, go on with the other scenarios
            traceback.print_exc()
            section = Section(
                scenario.number, scenario.title, correct=False, problems=[f"crashed: {exc}"]
            )
        section.seconds = time.monotonic() - t0
        failed |= not section.correct
        sections.append(section)
        print(section.markdown(), flush=True)
    elapsed = time.monotonic() - started
    if code_fingerprint() != fingerprint:
        code += (
            "; WARNING: product source files changed while the bench ran, so its scenarios "
            "may have measured different code"
        )
        print(f"\n{code}", flush=True)
    print(
        f"\nbench finished in {elapsed / 60:.1f} min"
        + ("; WRONG RESULTS OR CRASHES" if failed else "")
    )
    if args.record:
        command = "python -m bench " + shlex.join(argv if argv is not None else sys.argv[1:])
        append_results(
            sections,
            command=command.strip(),
            started=started_at,
            elapsed_s=elapsed,
            machine_text=machine(ctx.postgres_version),
            load_text=load,
            code_text=code,
        )
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
