"""File connector: CSV and JSON Lines."""
