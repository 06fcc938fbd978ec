"""Operator console for the e-journals' stored secrets (shared/secretbox.py).

Rotating the platform key:
  1. put a new key first in SFERA_SECRETS_KEYS (``new,old``) everywhere and restart the bridge;
  2. ``python -m ejournal_bridge.sealing reseal`` seals every provider's secrets with it;
  3. remove the old key from SFERA_SECRETS_KEYS and restart.
``reseal`` also seals secrets stored in clear before sealing existed.
"""

from __future__ import annotations

import argparse
import sys

from ejournal_bridge.application import BridgeApplication
from shared.secretbox import SecretUnreadable
from shared.store import make_application


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m ejournal_bridge.sealing", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["reseal"], help="seal every stored secret with the newest key")
    parser.parse_args(argv)
    app = make_application(BridgeApplication, "ejournal_bridge")
    try:
        changed = app.reseal_secrets()
    except SecretUnreadable as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    print(f"{changed} e-journal(s) re-sealed with the newest key")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
