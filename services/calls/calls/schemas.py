"""Marshmallow schemas of calls's RPC payloads and results (issue #7)."""
