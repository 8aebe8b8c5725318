"""The broker's SQLite schema.

Messages live on disk, one row each, and every hot query is an index range: a receive costs the same
at a thousand queued messages as at a million, and memory does not grow with the backlog.
"""

from __future__ import annotations

import sqlite3

SCHEMA_VERSION = 1

DDL = """
CREATE TABLE IF NOT EXISTS queues (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    fifo        INTEGER NOT NULL,
    attributes  TEXT NOT NULL,            -- JSON of the settable attributes
    tags        TEXT NOT NULL DEFAULT '{}',
    created     INTEGER NOT NULL,         -- seconds since the epoch
    modified    INTEGER NOT NULL
);

-- id is the global sequence, given by the engine: it never goes back, even after deletes and restarts
-- (FIFO SequenceNumber and receipt handles rely on it). Not AUTOINCREMENT, which writes one more page
-- per transaction; the engine keeps a high-water mark in meta instead, advanced in blocks.
CREATE TABLE IF NOT EXISTS messages (
    id              INTEGER PRIMARY KEY,
    queue_id        INTEGER NOT NULL,
    visible_at      INTEGER NOT NULL,     -- ms; <= now means deliverable
    sent_at         INTEGER NOT NULL,     -- ms; retention counts from here (no index: see sweep)
    receive_count   INTEGER NOT NULL DEFAULT 0,
    first_receive   INTEGER,              -- ms; meaningful once received (written at insert: see UNRECEIVED)
    receipt         INTEGER NOT NULL DEFAULT 0,  -- nonce of the latest receipt handle (its receive's second
                                          -- and random bits: operations.receipt_nonce); <= 0: not received
    message_id      TEXT NOT NULL,
    body            TEXT NOT NULL,
    attributes      TEXT,                 -- JSON of the message attributes, NULL when none
    md5_attributes  TEXT,
    group_id        TEXT,
    dedup_id        TEXT,
    sender_id       TEXT,                 -- NULL for the engine's default sender
    trace_header    TEXT,                 -- AWSTraceHeader system attribute
    dlq_source      TEXT                  -- ARN of the queue it was dead-lettered from
);
CREATE INDEX IF NOT EXISTS messages_ready ON messages (queue_id, visible_at);
CREATE INDEX IF NOT EXISTS messages_group ON messages (queue_id, group_id, id) WHERE group_id IS NOT NULL;

-- FIFO: one row per message group that has messages; next_at is the earliest time the group may
-- deliver (its head's visibility, or the end of its in-flight reservation).
CREATE TABLE IF NOT EXISTS fifo_groups (
    queue_id    INTEGER NOT NULL,
    group_id    TEXT NOT NULL,
    next_at     INTEGER NOT NULL,
    PRIMARY KEY (queue_id, group_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS fifo_groups_ready ON fifo_groups (queue_id, next_at);

-- FIFO deduplication: kept for five minutes, whether or not the message is still in the queue.
CREATE TABLE IF NOT EXISTS dedup (
    queue_id    INTEGER NOT NULL,
    scope       TEXT NOT NULL,            -- '' for queue scope, the group id for messageGroup scope
    dedup_id    TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,         -- ms
    message_id  TEXT NOT NULL,
    sequence    INTEGER NOT NULL,
    PRIMARY KEY (queue_id, scope, dedup_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dedup_expiry ON dedup (expires_at);

-- FIFO ReceiveRequestAttemptId: a retried receive returns the same messages for five minutes.
CREATE TABLE IF NOT EXISTS receive_attempts (
    queue_id    INTEGER NOT NULL,
    attempt_id  TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    handles     TEXT NOT NULL,            -- JSON list of [message row id, receipt nonce]
    PRIMARY KEY (queue_id, attempt_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS move_tasks (
    handle          TEXT PRIMARY KEY,
    source_arn      TEXT NOT NULL,
    destination_arn TEXT,
    max_per_second  INTEGER,
    status          TEXT NOT NULL,        -- RUNNING, COMPLETED, CANCELLING, CANCELLED, FAILED
    started         INTEGER NOT NULL,     -- ms
    moved           INTEGER NOT NULL DEFAULT 0,
    to_move         INTEGER NOT NULL DEFAULT 0,
    failure_reason  TEXT
);

CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

-- SNS (scte.queue.topics): topics, subscriptions, FIFO topic deduplication, HTTP and cross-region outboxes.
CREATE TABLE IF NOT EXISTS topics (
    name                    TEXT PRIMARY KEY,
    arn                     TEXT NOT NULL UNIQUE,
    fifo                    INTEGER NOT NULL,
    attributes              TEXT NOT NULL,        -- JSON of the settable attributes
    tags                    TEXT NOT NULL DEFAULT '{}',
    sequence                INTEGER NOT NULL DEFAULT 0,  -- FIFO topics: last SequenceNumber given
    deleted_subscriptions   INTEGER NOT NULL DEFAULT 0,
    created                 INTEGER NOT NULL      -- seconds since the epoch
);
CREATE TABLE IF NOT EXISTS subscriptions (
    arn             TEXT PRIMARY KEY,
    topic_arn       TEXT NOT NULL,
    protocol        TEXT NOT NULL,
    endpoint        TEXT NOT NULL,
    owner           TEXT NOT NULL,
    attributes      TEXT NOT NULL,            -- JSON: RawMessageDelivery, FilterPolicy, FilterPolicyScope, ...
    confirmed       INTEGER NOT NULL,
    token           TEXT,                     -- confirmation token of an http/https/email subscription
    authenticated   INTEGER NOT NULL DEFAULT 0,
    created         INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS subscriptions_topic ON subscriptions (topic_arn, protocol, endpoint);
CREATE TABLE IF NOT EXISTS topic_dedup (
    topic_arn   TEXT NOT NULL,
    dedup_id    TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,             -- ms
    message_id  TEXT NOT NULL,
    sequence    TEXT NOT NULL,
    PRIMARY KEY (topic_arn, dedup_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sns_deliveries (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_arn    TEXT NOT NULL,
    endpoint            TEXT NOT NULL,
    headers             TEXT NOT NULL,        -- JSON
    payload             TEXT NOT NULL,
    attempts            INTEGER NOT NULL DEFAULT 0,
    next_at             INTEGER NOT NULL      -- ms
);
CREATE INDEX IF NOT EXISTS sns_deliveries_due ON sns_deliveries (next_at);
-- Fan-out to queues of other regions (other engines, other files): written in the publish's transaction,
-- sent by scte.queue.topics.region_delivery, deleted once the other region has committed (at least once).
CREATE TABLE IF NOT EXISTS sns_region_deliveries (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_arn    TEXT NOT NULL,
    queue_arn           TEXT NOT NULL,
    request             TEXT NOT NULL,        -- JSON of the send: MessageBody, MessageAttributes, group, dedup ids
    attempts            INTEGER NOT NULL DEFAULT 0,
    next_at             INTEGER NOT NULL      -- ms
);
CREATE INDEX IF NOT EXISTS sns_region_deliveries_due ON sns_region_deliveries (next_at);
"""


def create_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(DDL)
    conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
