"""The activity service: each member's activity stream: high volume, buffered, kept for a limited time.

Its rules live in `domain.py`.
"""
