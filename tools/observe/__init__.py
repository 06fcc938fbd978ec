"""A real Prometheus beside a running platform: ``make observe`` and tests/deploy."""
