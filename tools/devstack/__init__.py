"""The local platform: private RabbitMQ and PostgreSQL instances, the services,
relays and gateway as child processes. Used by ``make run`` and by the tests."""
