"""The notifications service: which event tells whom what, by which channel, and how deliveries are
retried.

Its rules live in `domain.py`.
"""
