"""End-to-end tests against real systems of record, run by the testbed."""
