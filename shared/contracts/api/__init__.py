"""The services' RPC contracts: for each service, the marshmallow schemas of its entrypoints' payloads and
results and the limits both sides check. The one thing the gateway (and any other caller) imports of a service;
the service validates with the same schemas. Events are in ``shared.contracts``; these are the requests."""
