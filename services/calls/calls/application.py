"""calls's application: commands and queries, no transport."""

from shared.store import ServiceApplication


class CallsApplication(ServiceApplication):
    name = "calls"
