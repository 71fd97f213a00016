"""Schedules: parsing and computing fire times, and saying them in English."""
