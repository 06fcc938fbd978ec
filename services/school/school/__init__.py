"""school: organizations, classes, invites, members, materials (DOMAIN.md RO-*, SC-*)."""
