"""The platform's catalogue of services: where each one's nameko service class and
eventsourcing application live. Tools (migrate, relays, topology, make run)
read it; services never do."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceEntry:
    name: str
    service: str  # module:Class of the nameko service
    application: str  # module:Class of the eventsourcing application


SERVICES: dict[str, ServiceEntry] = {
    entry.name: entry
    for entry in (
        ServiceEntry("identity", "identity.service:IdentityService", "identity.application:IdentityApplication"),
        ServiceEntry("school", "school.service:SchoolService", "school.application:SchoolApplication"),
        ServiceEntry("messaging", "messaging.service:MessagingService", "messaging.application:MessagingApplication"),
        ServiceEntry("calls", "calls.service:CallsService", "calls.application:CallsApplication"),
        ServiceEntry("ejournal_bridge", "ejournal_bridge.service:BridgeService",
                     "ejournal_bridge.application:BridgeApplication"),
    )
}


def load(path: str) -> type:
    """Import ``module:Name``."""
    import importlib

    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)
