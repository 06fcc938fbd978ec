"""The platform operator's command line: applications to register organizations (SC-1).

    python -m school.operator list
    python -m school.operator approve APPLICATION_ID
    python -m school.operator reject APPLICATION_ID --reason "..."

It speaks RPC to a running school service (``SFERA_AMQP_URI``) as the trusted
operator console; operators named in ``SFERA_OPERATOR_PHONES`` can do the same
through the API.
"""

from __future__ import annotations

import argparse
import sys

from nameko.standalone.rpc import ClusterRpcProxy

import shared.errors  # noqa: F401  (typed errors arrive as themselves)
from shared.config import settings
from shared.errors import DomainError


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
    args = parser.parse_args(argv)
    with ClusterRpcProxy({"AMQP_URI": settings().amqp_uri}, timeout=30) as rpc:
        try:
            if args.command == "list":
                pending = rpc.school.pending_applications(actor_id=None, cli=True)
                for a in pending:
                    print(f"{a['application_id']}  {a['kind']:<7} {a['name']}  ({a['city']}, {a['country']})")
                print(f"{len(pending)} application(s) waiting")
            elif args.command == "approve":
                org = rpc.school.approve_application(actor_id=None, application_id=args.application_id, cli=True)
                print(f"approved: organization {org['organization_id']} ({org['name']})")
            else:
                rpc.school.reject_application(actor_id=None, application_id=args.application_id,
                                              reason=args.reason, cli=True)
                print("rejected")
        except DomainError as exc:
            print(f"refused: {exc.code}: {exc.message}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
