"""A simulated consumer system with configurable faults, for the demo and the tests."""
