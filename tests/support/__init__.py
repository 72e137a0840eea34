"""Helpers shared by the tests: a real speech server."""
