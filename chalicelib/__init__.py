"""Tickwork: everything that runs in Lambda lives in this package."""
