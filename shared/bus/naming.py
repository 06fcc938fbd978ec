"""Names of exchanges and queues, decided once for publishers, consumers and tools."""

from __future__ import annotations

DLQ_SUFFIX = ".dlq"

# Headers our consumer side adds to retried and dead-lettered messages.
H_ATTEMPT = "x-sfera-attempt"
H_ERROR = "x-sfera-error"
H_ERROR_TYPE = "x-sfera-error-type"
H_QUEUE = "x-sfera-queue"
H_FAILED_AT = "x-sfera-failed-at"


def event_exchange(service: str) -> str:
    """Same name nameko's ``event_handler`` listens on."""
    return f"{service}.events"


def consumer_queue(source_service: str, routing_key: str, service: str, method: str) -> str:
    """Same formula as nameko's SERVICE_POOL event handler queue."""
    return f"evt-{source_service}-{routing_key}--{service}.{method}"


def retry_queue(queue: str, attempt: int) -> str:
    return f"{queue}.retry.{attempt}"


def dead_letter_queue(queue: str) -> str:
    return f"{queue}{DLQ_SUFFIX}"
