"""ejournal_bridge: regional e-journal integration: links, timetables, automatic chats (DOMAIN.md EJ-*)."""
