"""The landscape: systems, domains, ownership, survivorship, mappings and quality rules."""
