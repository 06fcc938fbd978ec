"""messaging: school, class, subject, manual and direct chats with realtime delivery (DOMAIN.md CH-*)."""
