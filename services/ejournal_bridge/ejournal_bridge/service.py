"""ejournal_bridge's nameko entrypoints (issue #6 adds them)."""

from ejournal_bridge.application import BridgeApplication
from shared.service import EventSourcedApp, Observability, rpc


class BridgeService:
    name = "ejournal_bridge"

    app: BridgeApplication = EventSourcedApp(BridgeApplication)
    observability = Observability()

    @rpc
    def ping(self) -> dict:
        """Liveness through RPC: answers with the store's head position."""
        return {"service": self.name, "position": self.app.process_recorder.max_notification_id() or 0}
