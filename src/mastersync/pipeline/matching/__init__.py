"""Matching use cases: incremental matching in ingest, batch dedupe, review, merge and unmerge."""
