"""A simulator of a regional e-journal (issue #6): OAuth 2 authorization-code
sign-in for its people, a OneRoster-style read API with a timetable, and a
webhook sender that pushes a realistic school to the platform's bridge.

    python -m tools.ejournal_sim --port 8090 --regions 16,77

Every region served is its own e-journal under ``/r/<region>/``.
"""
