"""Governance rules for API consumers: scopes, field groups, object rules, audit, four-eyes."""
