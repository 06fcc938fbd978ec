"""messaging's application: commands and queries, no transport."""

from shared.store import ServiceApplication


class MessagingApplication(ServiceApplication):
    name = "messaging"
