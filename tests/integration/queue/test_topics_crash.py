"""Fan-out under SIGKILL: every acknowledged publish is in every matching queue exactly once.

topics_crash_worker.py publishes (Publish and PublishBatch, several tasks) to a topic with three
subscribed queues — raw, enveloped, and one whose filter policy takes only `kind=even` — and logs each
acknowledged message after the engine answered. The test kills it at a random moment (SIGKILL), several
rounds on one database file. After every round it opens an engine on a copy of the files (what the next
open recovers) and checks; after the last round, the real file. The checks:

- every acknowledged message is exactly once in `all-raw` and `all-envelope`, and exactly once in
  `even-only` if its kind is even, never if odd;
- no message is anywhere twice, and `even-only` holds nothing odd;
- a message the kill cut before its acknowledgement is all or none: in every matching queue, or in none.

Set SCTE_CRASH_SEED to replay a failing run.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from scte.queue import Engine, EngineConfig

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("topics_crash_worker.py")
QUEUES = ("all-raw", "all-envelope", "even-only")
ROUNDS = ("normal",) * 4 + ("full",)
READY_TIMEOUT = 20.0


def read_log(path: Path, acked: dict[str, str]) -> tuple[int, int]:
    """Add a round's acknowledged (id -> kind); returns (lines, torn last lines)."""
    data = path.read_bytes() if path.exists() else b""
    lines = data.split(b"\n")
    torn = 1 if lines[-1] else 0  # the kill cut the last line: never complete, so never relied on
    for raw in lines[:-1]:
        tag, message_id, kind = raw.decode().split(" ")
        assert tag == "P"
        assert message_id not in acked, f"{message_id} logged twice"
        acked[message_id] = kind
    return len(lines) - 1, torn


def run_round(tmp: Path, db: Path, round_no: int, durability: str, seed: int, rng: random.Random) -> tuple[Path, float]:
    log = tmp / f"acks-{round_no}.log"
    stderr_path = tmp / f"worker-{round_no}.err"
    command = [sys.executable, str(WORKER), str(db), str(log), "--round", str(round_no)]
    command += ["--durability", durability, "--seed", str(seed + round_no)]
    with stderr_path.open("wb") as stderr:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr)
    delay = rng.uniform(0.3, 1.2)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], READY_TIMEOUT)
        line = proc.stdout.readline() if ready else b""
        assert line == b"ready\n", f"worker {round_no} did not start: {stderr_path.read_text()[-3000:]}"
        time.sleep(delay)
        assert proc.poll() is None, f"worker {round_no} died by itself: {stderr_path.read_text()[-3000:]}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    return log, delay


def copy_files(db: Path, into: Path) -> Path:
    into.mkdir()
    copy = into / db.name
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{db}{suffix}")
        if source.exists():
            shutil.copyfile(source, f"{copy}{suffix}")
    return copy


async def contents(db: Path) -> dict[str, list[str]]:
    """The message ids in each queue (the body, or the envelope's Message), received once each."""
    out: dict[str, list[str]] = {}
    async with Engine(EngineConfig(path=db)) as engine:
        for queue in QUEUES:
            ids: list[str] = []

            async def receiver(queue: str = queue, ids: list[str] = ids) -> None:
                while got := await engine.receive_message(
                    queue, max_number=10, visibility_timeout=43200, wait_time_seconds=0
                ):
                    for m in got:
                        body = m["Body"]
                        ids.append(json.loads(body)["Message"] if body.startswith("{") else body)

            await asyncio.gather(*(receiver() for _ in range(4)))
            out[queue] = ids
    return out


def check(found: dict[str, list[str]], acked: dict[str, str], where: str) -> dict[str, int]:
    counted = {q: Counter(ids) for q, ids in found.items()}
    for queue, counts in counted.items():
        twice = sorted(i for i, n in counts.items() if n > 1)
        assert not twice, f"{where}: {len(twice)} messages twice in {queue}, e.g. {twice[:5]}"
    everywhere = set().union(*(c.keys() for c in counted.values()))
    kinds = dict(acked)
    for message_id in everywhere - acked.keys():
        # Unacknowledged (cut by the kill): its kind follows from its sequence number.
        kinds[message_id] = "even" if int(message_id.rsplit(".", 1)[1]) % 2 == 0 else "odd"
    odd = sorted(i for i in counted["even-only"] if kinds[i] != "even")
    assert not odd, f"{where}: {len(odd)} odd messages in even-only (filter policy), e.g. {odd[:5]}"
    for queue in QUEUES:
        expected = {i for i, k in acked.items() if queue != "even-only" or k == "even"}
        lost = sorted(expected - counted[queue].keys())
        assert not lost, f"{where}: {len(lost)} acknowledged publishes missing from {queue}, e.g. {lost[:5]}"
    # All or none, acknowledged or not: a message in one matching queue is in every matching queue.
    partial = sorted(
        i
        for i in everywhere
        if {q for q in QUEUES if i in counted[q]} != {q for q in QUEUES if q != "even-only" or kinds[i] == "even"}
    )
    assert not partial, f"{where}: {len(partial)} publishes in only some matching queues, e.g. {partial[:5]}"
    return {q: len(ids) for q, ids in found.items()} | {"unacknowledged_present": len(everywhere - acked.keys())}


def test_sigkill_during_a_publish_storm_loses_and_duplicates_no_acknowledged_publish(tmp_path: Path) -> None:
    seed = int(os.environ.get("SCTE_CRASH_SEED", random.randrange(2**32)))
    print(f"\ntopics crash test seed: SCTE_CRASH_SEED={seed}")
    rng = random.Random(seed)
    db = tmp_path / "broker.db"
    acked: dict[str, str] = {}
    torn = 0
    started = time.monotonic()
    for round_no, durability in enumerate(ROUNDS):
        log, delay = run_round(tmp_path, db, round_no, durability, seed, rng)
        lines, cut = read_log(log, acked)
        torn += cut
        found = asyncio.run(contents(copy_files(db, tmp_path / f"copy-{round_no}")))
        counts = check(found, acked, f"round {round_no} (seed {seed})")
        print(
            f"round {round_no} ({durability}): killed {delay:.2f}s after ready; {lines} publishes acknowledged "
            f"this round, {len(acked)} in all; on disk {counts}"
        )

    found = asyncio.run(contents(db))
    counts = check(found, acked, f"final (seed {seed})")
    even = sum(1 for k in acked.values() if k == "even")
    print(
        f"final: {len(acked)} acknowledged publishes ({even} even) checked in 3 queues: {counts}; "
        f"{torn} torn log lines; {time.monotonic() - started:.1f}s"
    )
    assert len(acked) > 1000, "the worker did too little to prove anything"
