"""The media service: uploads, their validation, and processing into renditions.

Its rules live in `domain.py`.
"""
