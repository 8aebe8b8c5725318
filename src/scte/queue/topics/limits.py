"""SNS's limits, name patterns and fixed names, as the topics package checks them."""

from __future__ import annotations

import re

PAGE_SIZE = 100  # ListTopics / ListSubscriptions page
MAX_MESSAGE_BYTES = 262_144
MAX_BATCH_ENTRIES = 10
MAX_TAGS = 50
DEDUP_WINDOW_MS = 5 * 60 * 1000  # FIFO topic deduplication
HTTP_TIMEOUT_S = 5.0
PENDING = "pending confirmation"  # Subscribe's answer for a subscription awaiting its handshake
PENDING_LISTED = "PendingConfirmation"  # the same in ListSubscriptions

PROTOCOLS = frozenset(("sqs", "http", "https", "email", "email-json", "sms", "lambda", "application", "firehose"))
NEEDS_CONFIRMATION = frozenset(("http", "https", "email", "email-json"))
TOPIC_NAME = re.compile(r"[A-Za-z0-9_-]{1,256}")
FIFO_TOPIC_NAME = re.compile(r"[A-Za-z0-9_-]{1,251}\.fifo")
E164 = re.compile(r"\+?[1-9]\d{1,14}")
ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,256}")
BATCH_ID = re.compile(r"[A-Za-z0-9_-]{1,80}")
FIFO_ID = re.compile(r"[\x21-\x7e]{1,128}")
