"""The unit directory, duty rooms, accounts and the duty roster (database-backed)."""
