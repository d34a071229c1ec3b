"""Isolation between enterprises: database roles and row-level security, broker credentials."""
