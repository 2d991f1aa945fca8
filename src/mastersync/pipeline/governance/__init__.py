"""Use cases of the governed APIs: consumers and credentials, writes through ingest,
four-eyes decisions, processes, audit verification, usage."""
