"""Tests of the Tryton connector that need no server (the rest run in tests/e2e/real)."""
