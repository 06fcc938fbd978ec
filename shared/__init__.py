"""Sfera's own library: contracts, event bus, event stores, observability."""
