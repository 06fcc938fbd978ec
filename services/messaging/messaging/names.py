"""``python -m messaging.names backfill``: the names of the people and schools messaging's dialogs and inbox
threads hold that came before messaging kept names (``GET /chats?q=`` matches those chats by them), asked once
of their owners over RPC -- identity (a person as a member of the chat may see them) and school -- with the
services' settings. Run it once after the release that added the names; it names only what has no name yet."""

from __future__ import annotations

import sys

from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ClusterRpcProxy

from shared.config import settings


def main(argv: list[str]) -> int:
    from messaging.application import MessagingApplication
    from shared.observability.logging import configure_logging
    from shared.store import make_application

    if argv != ["backfill"]:
        print("usage: python -m messaging.names backfill", file=sys.stderr)
        return 2
    configure_logging("messaging-names")
    app = make_application(MessagingApplication, "messaging")
    try:
        with ClusterRpcProxy({"AMQP_URI": settings().amqp_uri}, timeout=30) as rpc:

            def person_names(viewer: str, person: str) -> tuple[str | None, str | None, str | None] | None:
                try:
                    found = rpc.identity.get_person(actor_id=viewer, user_id=person)
                except RemoteError:  # account.not_found: gone, or not for this viewer to see
                    return None
                return found.get("last_name"), found.get("first_name"), found.get("patronymic")

            def organization_name(organization_id: str) -> str | None:
                try:
                    return rpc.school.get_organization(organization_id=organization_id)["name"]
                except RemoteError:
                    return None

            people, schools = app.backfill_names(person_names, organization_name)
    finally:
        app.close()
    print(f"messaging: named {people} people and {schools} organizations")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
