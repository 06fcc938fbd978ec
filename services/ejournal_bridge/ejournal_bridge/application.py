"""ejournal_bridge's application: commands and queries, no transport."""

from shared.store import ServiceApplication


class BridgeApplication(ServiceApplication):
    name = "ejournal_bridge"
