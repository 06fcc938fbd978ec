"""The migration step: creates every service's event-store tables once, before
the services start (they run with CREATE_TABLE=n).

Usage: ``python -m shared.store.migrate [service[=module:AppClass] ...]``; with no
arguments it migrates every service of ``shared.platform.SERVICES``.
"""

from __future__ import annotations

import sys

from shared.config import settings
from shared.observability.logging import configure_logging, get_logger
from shared.platform import SERVICES, load
from shared.store import make_application

log = get_logger("shared.store.migrate")


def migrate(targets: dict[str, str]) -> None:
    for service, path in targets.items():
        app = make_application(load(path), service, create_table=True)
        app.close()
        log.info("store ready", extra={"service": service, "persistence": settings().persistence})


def main(argv: list[str]) -> int:
    configure_logging("migrate")
    if argv:
        targets = {}
        for arg in argv:
            service, _, path = arg.partition("=")
            targets[service] = path or SERVICES[service].application
    else:
        targets = {name: entry.application for name, entry in SERVICES.items()}
    migrate(targets)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
