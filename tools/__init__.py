"""Developer tooling: the local stack (make run), infrastructure for tests."""
