"""calls's nameko entrypoints (issue #7 adds them)."""

from calls.application import CallsApplication
from shared.service import EventSourcedApp, Observability, rpc


class CallsService:
    name = "calls"

    app: CallsApplication = EventSourcedApp(CallsApplication)
    observability = Observability()

    @rpc
    def ping(self) -> dict:
        """Liveness through RPC: answers with the store's head position."""
        return {"service": self.name, "position": self.app.process_recorder.max_notification_id() or 0}
