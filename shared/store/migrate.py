"""The migration step: creates every service's event-store tables once, before
the services start (they run with CREATE_TABLE=n).

Usage: ``python -m shared.store.migrate [service.module:AppClass ...]``; with no
arguments it migrates every application listed in APPLICATIONS.
"""

from __future__ import annotations

import importlib
import sys

from shared.config import settings
from shared.observability.logging import configure_logging, get_logger
from shared.store import make_application

APPLICATIONS = {
    "identity": "identity.application:IdentityApplication",
    "school": "school.application:SchoolApplication",
    "messaging": "messaging.application:MessagingApplication",
    "calls": "calls.application:CallsApplication",
    "ejournal_bridge": "ejournal_bridge.application:BridgeApplication",
}

log = get_logger("shared.store.migrate")


def load(path: str) -> type:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def ensure_postgres_schemas(schemas: list[str]) -> None:
    import psycopg
    from psycopg import sql

    config = settings()
    with psycopg.connect(
        host=config.postgres_host,
        port=config.postgres_port,
        dbname=config.postgres_db,
        user=config.postgres_user,
        password=config.postgres_password,
        autocommit=True,
    ) as conn:
        for schema in schemas:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))


def migrate(targets: dict[str, str]) -> None:
    if settings().persistence == "postgres":
        ensure_postgres_schemas(list(targets))
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
            targets[service] = path or APPLICATIONS[service]
    else:
        targets = APPLICATIONS
    migrate(targets)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
