"""The event bus: the outbox relay (publishing with confirms) and the consumer
side (idempotent handling, retries with back-off, dead letters)."""
