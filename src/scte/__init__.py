"""SCTE Platform: durable SQS-compatible broker, messaging SDK and the SCTE business services."""

__version__ = "0.1.0"
