"""calls's aggregates and domain errors: they arrive with issue #7; the
service is already wired (store, relay, metrics, health) so it runs in `make run`."""
