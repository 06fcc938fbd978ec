"""Metrics, health endpoints and structured logs for every Sfera process."""
