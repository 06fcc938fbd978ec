"""school: organizations, classes, invites, members, materials (docs/rules.md RO-*, SC-*)."""
