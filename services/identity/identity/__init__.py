"""identity: accounts, sign-in by phone, sessions, parent links (DOMAIN.md ID-*, PL-*)."""
