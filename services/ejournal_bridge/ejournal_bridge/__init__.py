"""ejournal_bridge: regional e-journal integration: links, timetables, automatic chats (docs/rules.md EJ-*)."""
