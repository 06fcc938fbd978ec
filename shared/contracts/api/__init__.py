"""The services' RPC contracts: for each service, the marshmallow schemas of its entrypoints' payloads and
results and the limits both sides check. The one thing the gateway (and any other caller) imports of a service;
the service validates with the same schemas. Events are in ``shared.contracts``; these are the requests."""

from __future__ import annotations

import functools

from marshmallow import Schema


@functools.cache
def one(cls: type[Schema], many: bool = False) -> Schema:
    """The one instance of a schema class (and ``many``) in this process, for every call's load and dump: making one
    deep-copies each declared field (50-100 µs for a chat message's input, more than its load or dump; a post made
    three in the gateway and three in messaging, issue #17), and an instance keeps nothing of a call (marshmallow 4:
    no context), so threads and green threads share it."""
    return cls(many=many)
