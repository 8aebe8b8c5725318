"""SCTE's business units, one package per service.

Each package holds its rules in `domain.py` (plain Python, no framework, no I/O), and later its
tables (`db.py`), REST API (`api.py`), message handlers (`handlers.py`) and wiring (`service.py`). A
service never imports another service: what it needs of another's data arrives as events from
`scte.contracts` and is kept in its own read model.
"""
