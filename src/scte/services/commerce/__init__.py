"""The commerce service: orders, payments, company purchase orders and monthly invoices.

Its rules live in `domain.py`.
"""
