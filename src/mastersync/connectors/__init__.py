"""Connectors: how records get in and out of connected systems."""
