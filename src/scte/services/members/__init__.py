"""The members service: accounts, profiles, membership terms, member status and designations.

Its rules live in `domain.py`.
"""
