"""Ports: the Protocols the pipeline needs from the outside world."""
