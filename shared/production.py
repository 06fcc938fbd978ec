"""Production mode (``SFERA_ENV=production``): every process refuses to start on
a value that only suits one developer's machine.

The repository's defaults make ``make run`` work with no configuration; they
are public, so a platform running on them accepts tokens anyone can sign. In
production each process checks, before it connects to anything, that no
secret is a repository default (or too short to be a key), that codes do not
go to the dev inbox, that no fault-injection switch (``SFERA_FAULT_*``) is
set, that the links and sockets handed to people are https://
and wss://, and that events are stored durably. The whole platform reads one
environment (docs/production.md), so every process checks all of it: a
process that does not use a value today may tomorrow.

Entry points: ``shared.runner`` (nameko services), ``shared.bus.relay``, the
SFU (``python -m sfu``) and the gateway's ``create_app``.
"""

from __future__ import annotations

import os
import sys
import urllib.parse
from collections.abc import Mapping

from cryptography.fernet import Fernet

from shared.config import (
    DEV_CODE_SECRET,
    DEV_JWT_SECRET,
    DEV_SECRETS_KEY,
    DEV_SFU_TOKEN_SECRET,
    ENVIRONMENTS,
    Settings,
    settings,
)

EXIT_CONFIG = 78  # sysexits.h EX_CONFIG: a configuration error
MIN_SECRET_LENGTH = 32
DEV_DATABASE_PASSWORD = "sfera"
DEV_BROKER_PASSWORD = "guest"
DEV_INBOX = "devinbox"
# Fault injection (the reliability tests' SIGKILLs at chosen points: shared.bus.relay, shared.bus.consumer) is
# switched on by variables under this prefix; production refuses any of them being set, whatever the value.
FAULT_PREFIX = "SFERA_FAULT_"


class UnsafeConfiguration(RuntimeError):
    """Production mode found values it refuses to run with."""


def _secret(name: str, value: str, dev_value: str) -> str | None:
    if value == dev_value:
        return f"{name} is the repository's dev-only value; set a random one (e.g. `openssl rand -base64 48`)"
    if len(value) < MIN_SECRET_LENGTH:
        return f"{name} has {len(value)} characters; a key needs at least {MIN_SECRET_LENGTH} random ones"
    return None


def _keys(keys: tuple[str, ...]) -> str | None:
    if not keys:
        return "SFERA_SECRETS_KEYS is empty; set one or more Fernet keys, newest first"
    if DEV_SECRETS_KEY in keys:
        return ("SFERA_SECRETS_KEYS holds the repository's dev-only key; generate one with "
                "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`")
    for key in keys:
        try:
            Fernet(key)
        except ValueError:
            return "SFERA_SECRETS_KEYS: each key is 32 url-safe base64-encoded bytes (a Fernet key)"
    return None


def problems(config: Settings, environ: Mapping[str, str]) -> list[str]:
    """What production mode refuses in this configuration (empty: it may start)."""

    def env(name: str) -> str:
        return (environ.get(name) or "").strip()

    found = [
        _secret("SFERA_JWT_SECRET", config.jwt_secret, DEV_JWT_SECRET),
        _secret("SFERA_CODE_SECRET", config.code_secret, DEV_CODE_SECRET),
        _secret("SFERA_LINK_SECRET", config.link_secret, DEV_CODE_SECRET),
        _secret("SFERA_SFU_TOKEN_SECRET", config.sfu_token_secret, DEV_SFU_TOKEN_SECRET),
        _keys(config.secrets_keys),
    ]
    broker = urllib.parse.urlsplit(config.amqp_uri)
    if broker.password in (None, "", DEV_BROKER_PASSWORD):
        found.append("SFERA_AMQP_URI uses RabbitMQ's default guest account or no password; "
                     "give the platform its own user")
    if config.persistence == "memory":
        found.append("PERSISTENCE=memory keeps nothing; use postgres (or sqlite on one machine)")
    if config.persistence == "postgres" and config.postgres_password in ("", DEV_DATABASE_PASSWORD):
        found.append("SFERA_PG_PASSWORD is the repository's default; set the database role's own password")
    for name in ("SFERA_SMS_ADAPTER", "SFERA_MAIL_ADAPTER"):
        if env(name) in ("", DEV_INBOX):
            found.append(f"{name} is the dev inbox (codes written to files under var/outbox); "
                         f"set {'http' if 'SMS' in name else 'smtp'}")
    if not env("SFERA_PUBLIC_URL").lower().startswith("https://"):
        found.append("SFERA_PUBLIC_URL is not an https:// URL (links people get must not travel in clear)")
    if not env("SFERA_SFU_URL").lower().startswith("wss://"):
        found.append("SFERA_SFU_URL is not a wss:// URL (join tokens must not travel in clear)")
    node_url = env("SFERA_SFU_PUBLIC_URL")  # an SFU node's own socket, told to calls (issue #17)
    if node_url and not node_url.lower().startswith("wss://"):
        found.append("SFERA_SFU_PUBLIC_URL is not a wss:// URL (join tokens must not travel in clear)")
    faults = sorted(name for name in environ if name.upper().startswith(FAULT_PREFIX))
    if faults:
        found.append(f"{', '.join(faults)}: fault injection (the reliability tests' deliberate crashes) is set; "
                     f"unset every {FAULT_PREFIX}* variable")
    return [p for p in found if p]


def check_production(process: str, environ: Mapping[str, str] | None = None) -> None:
    """Raises ``UnsafeConfiguration`` when this process may not start (nothing in development)."""
    environ = os.environ if environ is None else environ
    config = settings(environ)
    if config.env not in ENVIRONMENTS:
        raise UnsafeConfiguration(f"{process}: SFERA_ENV={config.env!r} is neither of {', '.join(ENVIRONMENTS)}")
    if config.env != "production":
        return
    found = problems(config, environ)
    if found:
        raise UnsafeConfiguration(f"{process} refuses to start with SFERA_ENV=production:\n"
                                  + "\n".join(f"  - {p}" for p in found)
                                  + "\nSee docs/production.md.")


def refuse_unsafe_start(process: str) -> None:
    """For a command-line entry point: a clear message and exit status 78 instead of a start."""
    try:
        check_production(process)
    except UnsafeConfiguration as refusal:
        print(refusal, file=sys.stderr, flush=True)
        sys.exit(EXIT_CONFIG)
