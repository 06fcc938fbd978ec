"""The platform operator's console for the regional e-journals, on the machine itself.

    python -m ejournal_bridge.operator providers [--region 16]
    python -m ejournal_bridge.operator register-provider --region 16 --name "Электронная школа" \
        --base-url https://journal.example --client-id ID --client-secret SECRET --webhook-base URL

``register-provider`` prints the provider as JSON, with its webhook URL and its first webhook secret (shown this
once: give both to the journal's operators).

It builds the bridge's application on the bridge's own store (the same ``PERSISTENCE``, ``SFERA_VAR_DIR``,
``SFERA_PG_*`` and ``SFERA_SECRETS_KEYS`` settings as the services): whoever can open the store is on the machine.
Over the broker, the bridge's operator commands take the caller's id and ask school whether they are an operator
(a person whose phone is in ``SFERA_OPERATOR_PHONES``, signed in and using the API). The bridge's relay publishes
what the console decides, as for any other command. ``make demo`` registers its simulated journal this way.
"""

from __future__ import annotations

import argparse
import json
import sys

from ejournal_bridge.application import BridgeApplication
from ejournal_bridge.views import provider_created, provider_view
from shared.config import Settings
from shared.contracts.api import ejournal_bridge as schemas
from shared.contracts.api.ejournal_bridge import RegisterProvider
from shared.errors import DomainError
from shared.store import make_application


def register_provider(command: RegisterProvider, webhook_base: str, config: Settings | None = None) -> dict:
    """The provider registered, as the API answers it (with its webhook secret)."""
    app = make_application(BridgeApplication, "ejournal_bridge", config=config)
    try:
        provider, secret = app.register_provider(command)
        return provider_created(provider, webhook_base, secret)
    finally:
        app.close()


def providers(region: str | None, config: Settings | None = None) -> list[dict]:
    app = make_application(BridgeApplication, "ejournal_bridge", config=config)
    try:
        return [provider_view(p) for p in app.providers(region)]
    finally:
        app.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m ejournal_bridge.operator", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("providers", help="the registered e-journals")
    listing.add_argument("--region")
    register = sub.add_parser("register-provider", help="register a region's e-journal")
    for name in ("region", "name", "base-url", "client-id", "client-secret", "webhook-base"):
        register.add_argument(f"--{name}", required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "providers":
            found = providers(args.region)
            for p in found:
                print(f"{p['provider_id']}  {p['region']:<3} {p['name']}")
            print(f"{len(found)} e-journal(s)")
        else:
            command = schemas.ProviderInput().load_command({
                "region": args.region, "name": args.name, "base_url": args.base_url, "client_id": args.client_id,
                "client_secret": args.client_secret})
            print(json.dumps(register_provider(command, args.webhook_base), ensure_ascii=False, indent=2))
    except DomainError as exc:
        print(f"{exc.code}: {exc.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
