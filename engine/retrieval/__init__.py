"""Retrievers: one base class, one result type, one registry."""
