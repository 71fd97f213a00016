"""Scheduled tasks: the model, the service, and runs made on demand (trigger, backfill)."""
