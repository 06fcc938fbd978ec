"""messaging: school, class, subject, manual and direct chats with realtime delivery (docs/rules.md CH-*)."""
