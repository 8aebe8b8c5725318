"""The search service: the documents indexed per event and how a search box query is read.

Its rules live in `domain.py`.
"""
