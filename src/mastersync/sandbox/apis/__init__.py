"""Local stand-ins for APIs of systems that cannot run here, following their documented
contracts, served on loopback for tests and the sandbox."""
