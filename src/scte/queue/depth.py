"""Queue depth in O(1): exact counts of each queue's messages, kept in memory beside the store.

`ApproximateNumberOfMessages*` and the `/metrics` gauges used to count index rows on the broker's loop
(hundreds of milliseconds at a million messages, during which every other queue waited). Instead every
operation that adds, removes, hides or shows messages updates these counts in the same store piece, and
a read costs the same at one message as at a million.

A queue's messages are `total`; of those, `hidden[INFLIGHT]` (received, visibility timeout running) and
`hidden[DELAYED]` (not received, delay running) until their `visible_at`; the rest are visible. Hiding is
kept per `visible_at` (ms): `pending[kind][visible_at]` messages become visible then, all at once, with no
write to tell (a visibility timeout simply ends). `expire(now)` moves what is due out of `hidden`, in time
order (a heap), so the counts are exact at any `now`. Per call, not per message: a receive hides its
messages under one `visible_at`, and a delete shows them back by the `visible_at` its row returns.

Transactions: the store may roll a piece back (or a whole group, to run it again piece by piece); the
counts must follow. Every change is journalled and `undo(mark)` reverts what came after `mark`, when the
store rolls back to the savepoint it took at `mark`; `commit()` forgets the journal. A change to a
`visible_at` that has expired since is not reverted: the expiry has already shown all of its messages.

In-flight entries that expire with messages still in them (visibility timeouts that ran out) are also
remembered in `redeliver`: a standard queue's receive takes those messages first, as AWS does in the
common case, instead of after everything sent meanwhile.
"""

from __future__ import annotations

import heapq
import sqlite3

INFLIGHT, DELAYED = 0, 1
_REDELIVER_LIMIT = 1_024  # visibility timeouts remembered per queue (best effort beyond that)


class QueueDepth:
    """One queue's counts."""

    __slots__ = ("heap", "hidden", "oldest", "pending", "redeliver", "rows", "total", "zeroed")

    def __init__(self) -> None:
        self.total = 0
        self.hidden = [0, 0]  # INFLIGHT, DELAYED: messages whose visible_at is still ahead
        self.pending: tuple[dict[int, int], dict[int, int]] = ({}, {})  # per kind: visible_at -> messages
        self.heap: list[tuple[int, int]] = []  # (visible_at, kind) of the pending entries, earliest first
        self.redeliver: list[int] = []  # visible_at of in-flight entries that ran out with messages in them
        self.zeroed: list[tuple[int, int]] = []  # (kind, visible_at) entries emptied since the last commit
        self.oldest: tuple[int, int] | None = None  # (row id, sent_at) of the oldest message, when known
        # Row id -> visible_at of the messages received (entries of past times are stale and ignored): a
        # delete learns from it whether, and until when, its message was in flight, without reading the row
        # (a DELETE ... RETURNING costs twice a DELETE).
        self.rows: dict[int, int] = {}

    def counts(self) -> tuple[int, int, int]:
        """(visible, in flight, delayed), as of the last `Depths.expire`."""
        inflight, delayed = self.hidden
        return self.total - inflight - delayed, inflight, delayed


class Depths:
    """Every queue's `QueueDepth` by queue id, and the journal of the open transaction."""

    def __init__(self) -> None:
        self.queues: dict[int, QueueDepth] = {}
        # (depth, kind, visible_at, n): n added to pending (kind >= 0) or to total (kind -1); or
        # (queue id, replaced depth, -2, 0): the queue's depth was replaced (created, purged, deleted).
        self.journal: list[tuple[object, object, int, int]] = []
        self._zeroed: list[QueueDepth] = []  # the depths with emptied entries to drop at commit

    # -- changes, journalled ---------------------------------------------------------------------

    def add(self, depth: QueueDepth, n: int) -> None:
        """`n` messages more (or fewer) in the queue."""
        depth.total += n
        self.journal.append((depth, None, -1, n))

    def hide(self, depth: QueueDepth, kind: int, visible_at: int, n: int, now: int) -> None:
        """`n` of the queue's messages are hidden (`kind`) until `visible_at`; nothing if that is not ahead."""
        if visible_at <= now or n <= 0:
            return
        pending = depth.pending[kind]
        count = pending.get(visible_at)
        if count is None:
            pending[visible_at] = n
            heapq.heappush(depth.heap, (visible_at, kind))
        else:
            pending[visible_at] = count + n
        depth.hidden[kind] += n
        self.journal.append((depth, kind, visible_at, n))

    def show(self, depth: QueueDepth, visible_at: int, now: int) -> None:
        """One message hidden until `visible_at` is hidden no more (deleted, or its timeout changed)."""
        if visible_at <= now:
            return  # visible already (its entry expires, or has expired, with it)
        for kind in (INFLIGHT, DELAYED):
            pending = depth.pending[kind]
            count = pending.get(visible_at)
            if count:
                pending[visible_at] = count - 1
                depth.hidden[kind] -= 1
                self.journal.append((depth, kind, visible_at, -1))
                if count == 1:
                    if not depth.zeroed:
                        self._zeroed.append(depth)
                    depth.zeroed.append((kind, visible_at))
                return

    def received(self, depth: QueueDepth, ids: list[int], visible_at: int, now: int) -> None:
        """The messages `ids` were received and are in flight until `visible_at`."""
        self.hide(depth, INFLIGHT, visible_at, len(ids), now)
        if visible_at > now:
            depth.rows.update(dict.fromkeys(ids, visible_at))
            self.journal.append((depth, ids, -4, visible_at))

    def deleted(self, depth: QueueDepth, ids: list[int], gone: int, now: int) -> None:
        """`gone` of the messages `ids` were deleted: those in flight leave the in-flight count."""
        if gone:
            self.add(depth, -gone)
        rows = depth.rows
        popped = []
        for row_id in ids:
            visible_at = rows.pop(row_id, None)
            if visible_at is not None:
                popped.append((row_id, visible_at))
        if not popped:
            return
        self.journal.append((depth, popped, -3, 0))
        first = popped[0][1]
        if first > now and all(v == first for _i, v in popped):  # received together: one entry
            self._show_n(depth, first, len(popped))
            return
        for _row_id, visible_at in popped:
            self.show(depth, visible_at, now)

    def forget_row(self, depth: QueueDepth, row_id: int, visible_at: int | None) -> None:
        """A message's in-flight time changed (`visible_at`), or it left the queue while visible (None)."""
        rows = depth.rows
        old = rows.pop(row_id, None) if visible_at is None else rows.get(row_id)
        if visible_at is not None:
            rows[row_id] = visible_at
        if old is not None or visible_at is not None:
            self.journal.append((depth, [(row_id, old)], -3, 1))

    def _show_n(self, depth: QueueDepth, visible_at: int, n: int) -> None:
        pending = depth.pending[INFLIGHT]
        count = pending.get(visible_at)
        if count is None or count < n:
            for _ in range(n):
                self.show(depth, visible_at, visible_at - 1)
            return
        pending[visible_at] = count - n
        depth.hidden[INFLIGHT] -= n
        self.journal.append((depth, INFLIGHT, visible_at, -n))
        if count == n:
            if not depth.zeroed:
                self._zeroed.append(depth)
            depth.zeroed.append((INFLIGHT, visible_at))

    def compact_rows(self, depth: QueueDepth, now: int) -> None:
        """Drop the stale row entries (of times past) when they outnumber the live ones (not journalled:
        a stale entry means nothing)."""
        rows = depth.rows
        if len(rows) > 2 * depth.hidden[INFLIGHT] + 1024:
            depth.rows = {row_id: v for row_id, v in rows.items() if v > now}

    def replace(self, queue_id: int, depth: QueueDepth | None) -> None:
        """The queue's counts start afresh (a new or purged queue), or end (None: a deleted queue)."""
        old = self.queues.pop(queue_id, None)
        if depth is not None:
            self.queues[queue_id] = depth
        self.journal.append((queue_id, old, -2, 0))

    # -- time --------------------------------------------------------------------------------------

    def expire(self, depth: QueueDepth, now: int) -> None:
        """Show what became visible by `now` (timeouts and delays that ran out)."""
        heap = depth.heap
        while heap and heap[0][0] <= now:
            visible_at, kind = heapq.heappop(heap)
            count = depth.pending[kind].pop(visible_at, None)
            if count:
                depth.hidden[kind] -= count
                if kind == INFLIGHT:
                    redeliver = depth.redeliver
                    redeliver.append(visible_at)
                    if len(redeliver) > _REDELIVER_LIMIT:
                        del redeliver[0]

    # -- the store's transaction -------------------------------------------------------------------

    def mark(self) -> int:
        return len(self.journal)

    def undo(self, mark: int) -> None:
        """Revert the changes journalled after `mark` (the store rolled back to it)."""
        journal = self.journal
        for target, kind, visible_at, n in reversed(journal[mark:]):
            if visible_at == -4:  # received rows: forgotten again
                assert isinstance(target, QueueDepth) and isinstance(kind, list)
                for row_id in kind:
                    if target.rows.get(row_id) == n:
                        del target.rows[row_id]
                continue
            if visible_at == -3:  # row entries removed or changed: restored
                assert isinstance(target, QueueDepth) and isinstance(kind, list)
                for row_id, old in reversed(kind):
                    if old is None:
                        target.rows.pop(row_id, None)
                    else:
                        target.rows[row_id] = old
                continue
            if visible_at == -2:  # a replaced depth comes back
                assert isinstance(target, int)
                if kind is None:
                    self.queues.pop(target, None)
                else:
                    assert isinstance(kind, QueueDepth)
                    self.queues[target] = kind
                continue
            assert isinstance(target, QueueDepth)
            if kind is None:
                target.total -= n
                continue
            assert isinstance(kind, int)
            pending = target.pending[kind]
            count = pending.get(visible_at)
            if count is not None:  # (expired since: the expiry showed its messages already)
                pending[visible_at] = count - n
                target.hidden[kind] -= n
        del journal[mark:]

    def commit(self) -> None:
        """The transaction is on disk: forget the journal, drop the entries emptied by deletes."""
        self.journal.clear()
        if not self._zeroed:
            return
        dirty, self._zeroed = self._zeroed, []
        for depth in dirty:
            for kind, visible_at in depth.zeroed:
                if depth.pending[kind].get(visible_at) == 0:
                    del depth.pending[kind][visible_at]
            depth.zeroed.clear()
            live = len(depth.pending[INFLIGHT]) + len(depth.pending[DELAYED])
            if len(depth.heap) > 2 * live + 64:  # mostly entries of emptied times: rebuild it
                depth.heap = [(v, k) for k in (INFLIGHT, DELAYED) for v in depth.pending[k]]
                heapq.heapify(depth.heap)

    # -- counting from the table (start-up, and a queue whose counts were lost) --------------------

    def count(self, conn: sqlite3.Connection, queue_id: int, now: int) -> QueueDepth:
        """A queue's counts read from its rows (a scan: at start-up only)."""
        depth = QueueDepth()
        (depth.total,) = conn.execute("SELECT COUNT(*) FROM messages WHERE queue_id=?", (queue_id,)).fetchone()
        for visible_at, received, n in conn.execute(
            "SELECT visible_at, receipt > 0, COUNT(*) FROM messages WHERE queue_id=? AND visible_at>? "
            "GROUP BY visible_at, receipt > 0",
            (queue_id, now),
        ):
            kind = INFLIGHT if received else DELAYED
            depth.pending[kind][visible_at] = depth.pending[kind].get(visible_at, 0) + n
            depth.hidden[kind] += n
            depth.heap.append((visible_at, kind))
        heapq.heapify(depth.heap)
        depth.rows = dict(
            conn.execute(
                "SELECT id, visible_at FROM messages WHERE queue_id=? AND visible_at>? AND receipt>0", (queue_id, now)
            ).fetchall()
        )
        return depth
