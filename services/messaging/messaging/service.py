"""messaging's nameko entrypoints (issue #5 adds them)."""

from messaging.application import MessagingApplication
from shared.service import EventSourcedApp, Observability, rpc


class MessagingService:
    name = "messaging"

    app: MessagingApplication = EventSourcedApp(MessagingApplication)
    observability = Observability()

    @rpc
    def ping(self) -> dict:
        """Liveness through RPC: answers with the store's head position."""
        return {"service": self.name, "position": self.app.process_recorder.max_notification_id() or 0}
