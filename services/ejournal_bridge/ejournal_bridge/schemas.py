"""Marshmallow schemas of ejournal_bridge's RPC payloads and results (issue #6)."""
