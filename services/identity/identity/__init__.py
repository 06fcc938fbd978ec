"""identity: accounts, sign-in by phone, sessions, parent links (docs/rules.md ID-*, PL-*)."""
