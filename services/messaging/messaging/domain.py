"""messaging's aggregates and domain errors: they arrive with issue #5; the
service is already wired (store, relay, metrics, health) so it runs in `make run`."""
