"""Use cases on top of the core and the ports: ingest, exceptions, queries."""
