"""mastersync: a master-data synchronization hub for distributors."""

__version__ = "0.1.0"
