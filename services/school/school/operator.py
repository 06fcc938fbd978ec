"""The platform operator's console on the machine itself: applications to register organizations (SC-1).

    python -m school.operator list
    python -m school.operator approve APPLICATION_ID
    python -m school.operator reject APPLICATION_ID --reason "..."
    python -m school.operator reconcile-members

``reconcile-members``, once after upgrading to the release where a parent is a parent in every class their
children study in (RO-5, PL-7): each parent's classes made what their children's are now, and each member in the
rosters their membership says (older code could leave an ex-teacher in the staff's).

It builds school's application on school's own store (the same ``PERSISTENCE``,
``SFERA_VAR_DIR`` and ``SFERA_PG_*`` settings as the services) and acts as the
operator console in this process: whoever can open the store is on the machine.
Nothing on the broker can do the same; operators named in ``SFERA_OPERATOR_PHONES``
sign in and use the API. School's relay publishes what the console decides, as
for any other command.
"""

from __future__ import annotations

import argparse
import sys
import uuid

from school.application import CONSOLE, SchoolApplication
from shared.errors import DomainError, NotFound
from shared.regions import region_names
from shared.store import make_application


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m school.operator", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="applications waiting for a decision")
    approve = sub.add_parser("approve", help="approve an application")
    approve.add_argument("application_id")
    reject = sub.add_parser("reject", help="reject an application")
    reject.add_argument("application_id")
    reject.add_argument("--reason", required=True)
    sub.add_parser("reconcile-members",
                   help="parents in each class their children study in; rosters as the memberships say")
    args = parser.parse_args(argv)
    app = make_application(SchoolApplication, "school")
    try:
        if args.command == "list":
            pending = app.pending_applications(CONSOLE)
            for a in pending:
                place = ", ".join(filter(None, [a.city, *region_names(a.country, a.region)[:1], a.country]))
                print(f"{a.id}  {a.kind:<7} {a.name}  ({place})")
            print(f"{len(pending)} application(s) waiting")
        elif args.command == "reconcile-members":
            members = app.members_to_reconcile(CONSOLE)
            changed = sum(app.reconcile_member(CONSOLE, org, user) for org, user in members)
            print(f"{changed} of {len(members)} membership(s) changed")
        elif args.command == "approve":
            org = app.approve_application(CONSOLE, application_id(args.application_id))
            print(f"approved: organization {org.id} ({org.name})")
        else:
            app.reject_application(CONSOLE, application_id(args.application_id), args.reason)
            print("rejected")
    except DomainError as exc:
        print(f"refused: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    finally:
        app.close()
    return 0


def application_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise NotFound("application.not_found", "No such application.") from None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
