"""Integration events: versioned marshmallow schemas inside a CloudEvents 1.0 envelope.

This package is the one catalogue of events between services. A contract is
identified by ``<service>.<Name>.v<version>`` (the CloudEvents ``type``) and
travels on the ``<service>.events`` topic exchange with routing key
``<Name>.v<version>``. Breaking changes get a new version; both are published
while consumers move.
"""

from shared.contracts import calls, ejournal, identity, messaging, school  # noqa: F401  (registers contracts)
from shared.contracts.envelope import (
    CloudEvent,
    Contract,
    ContractError,
    contract,
    get_contract,
    make_event,
    outdated,
    parse_event,
    registry,
)

__all__ = [
    "CloudEvent",
    "Contract",
    "ContractError",
    "contract",
    "get_contract",
    "make_event",
    "outdated",
    "parse_event",
    "registry",
]
