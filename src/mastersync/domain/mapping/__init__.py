"""Declarative mappings: native record -> partial canonical record, never eval."""
