"""scripts/testbed: bring the testbed's systems up by hand.

    scripts/testbed prepare [SYSTEM...]   install them and build their templates, then exit
    scripts/testbed up [SYSTEM...]        start them, print how to reach them, wait for Ctrl-C

Systems: tryton (Tryton 8.2, SQLite), akeneo (akeneo-mock-server) and bottlecrm (BottleCRM,
django-crm 1.35), the last two on the PostgreSQL at MASTERSYNC_TEST_PG (default
postgresql://postgres@127.0.0.1:5432/test). Default: all three.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from tests.e2e.real.testbed import akeneo, bottlecrm, tryton
from tests.e2e.real.testbed.common import TestbedError

SYSTEMS = ("tryton", "akeneo", "bottlecrm")
PG_URL = os.environ.get("MASTERSYNC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _prepare(systems: list[str]) -> Path | None:
    template = None
    if "tryton" in systems:
        timings = tryton.Timings()
        template = tryton.ensure_template(timings)
        print(f"tryton {tryton.VERSION}: {timings.describe()}")
    if "akeneo" in systems:
        _, seconds, made = akeneo.ensure_installed()
        cached = "" if made else " (cached)"
        print(f"akeneo-mock-server {akeneo.VERSION}: install {seconds:.1f} s{cached}")
    if "bottlecrm" in systems:
        crm_timings = tryton.Timings()
        bottlecrm.ensure_template(PG_URL, crm_timings)
        print(f"bottlecrm {bottlecrm.VERSION}: {crm_timings.describe()}")
    return template


def _wait_for_signal() -> None:
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    try:
        while not stop:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass


def main(argv: list[str] | None = None) -> int:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="scripts/testbed",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["prepare", "up"])
    parser.add_argument("systems", nargs="*", help="tryton, akeneo, bottlecrm (default: all)")
    parser.add_argument("--database", default="mastersync", help="Tryton database name")
    args = parser.parse_args(argv)
    systems = args.systems or list(SYSTEMS)
    unknown = sorted(set(systems) - set(SYSTEMS))
    if unknown:
        parser.error(
            f"unknown system(s) {', '.join(unknown)}; the testbed has {', '.join(SYSTEMS)}"
        )
    try:
        started = time.monotonic()
        template = _prepare(systems)
        if args.command == "prepare":
            return 0
        with tempfile.TemporaryDirectory(prefix="mastersync-testbed-") as folder, ExitStack() as up:
            if template is not None:
                server = tryton.TrytonServer(Path(folder), [args.database], template)
                begun = time.monotonic()
                server.start()
                up.callback(server.stop)
                print(f"tryton server up in {time.monotonic() - begun:.1f} s")
                print(
                    f"  TRYTON_URL={server.url} TRYTON_DATABASE={args.database} "
                    f"TRYTON_PASSWORD={tryton.PASSWORD}  (user {tryton.USER})"
                )
                print(f"  log: {server.folder / 'trytond.log'}")
            if "akeneo" in systems:
                pim = akeneo.AkeneoServer(Path(folder), PG_URL)
                begun = time.monotonic()
                pim.start()
                up.callback(pim.stop)
                database = pim.new_database()
                print(f"akeneo-mock-server up in {time.monotonic() - begun:.1f} s")
                print(
                    f"  AKENEO_BASE_URL={pim.url} AKENEO_DB={database}  "
                    f"(send it as {akeneo.DB_HEADER}; any OAuth credentials)"
                )
            if "bottlecrm" in systems:
                crm = bottlecrm.BottleCrmServer(
                    Path(folder), bottlecrm.ensure_template(PG_URL, tryton.Timings()), PG_URL
                )
                begun = time.monotonic()
                crm.start()
                up.callback(crm.stop)
                print(f"bottlecrm up in {time.monotonic() - begun:.1f} s")
                print(
                    f"  BOTTLECRM_URL={crm.url} BOTTLECRM_TOKEN={crm.template.hub_token}  "
                    f"(database {crm.database}; unrestricted token "
                    f"{crm.template.user_token})"
                )
                print(f"  log: {Path(folder) / 'bottlecrm.log'}")
            print(f"testbed ready in {time.monotonic() - started:.1f} s; Ctrl-C stops it")
            _wait_for_signal()
        return 0
    except TestbedError as exc:
        print(f"testbed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
