"""`python -m mastersync.cli`."""

from mastersync.cli import main

main()
