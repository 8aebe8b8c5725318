"""The companies service: companies, employment links, company roles and rollups.

Its rules live in `domain.py`.
"""
