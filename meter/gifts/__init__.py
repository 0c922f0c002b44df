"""Gifts."""
