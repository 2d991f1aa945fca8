"""The testbed: real open-source systems of record installed into their own virtual
environments (cached between runs), each started on a free loopback port for the tests and
for people (scripts/testbed)."""
