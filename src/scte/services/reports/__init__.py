"""The reports service: aggregates over business events and their CSV export.

Its rules live in `domain.py`.
"""
