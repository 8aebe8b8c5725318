"""The certification service: programs, certifications and their life cycle, the recertification-unit
ledger, renewals.

Its rules live in `domain.py`.
"""
