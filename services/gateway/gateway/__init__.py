"""gateway: the one door for clients: REST under /api/v1, OpenAPI, auth, errors."""
