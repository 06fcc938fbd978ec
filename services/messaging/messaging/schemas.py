"""Marshmallow schemas of messaging's RPC payloads and results (issue #5)."""
