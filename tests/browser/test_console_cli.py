"""`scte queues` and `scte dlq` against a real `scte up` as its operator runs them (`--data` of the install:
the running broker and the admin key found there): a dead letter is listed, shown with its reason,
redriven by the CLI, and processed (the welcome mail arrives)."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

from tests.browser.test_console import DLQ, make_dead_letter
from tests.harness.platform import Platform, scte_env


def scte(platform: Platform, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scte.cli", *args, "--data", str(platform.data_dir)],
        env=scte_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_operator_finds_reads_and_redrives_a_dead_letter(platform: Platform) -> None:
    email = f"cli-{uuid.uuid4().hex[:10]}@browser.example"
    message_id, correlation_id = make_dead_letter(platform, email, "Cli Redrive", error="handler failed for the cli")

    listed = scte(platform, "queues")
    assert listed.returncode == 0, listed.stderr
    assert "notifications" in listed.stdout and DLQ in listed.stdout
    dlqs = scte(platform, "dlq", "list")
    assert dlqs.returncode == 0 and DLQ in dlqs.stdout

    shown = scte(platform, "dlq", "show", DLQ)
    assert shown.returncode == 0, shown.stderr
    assert message_id in shown.stdout and correlation_id in shown.stdout
    assert "handler failed for the cli" in shown.stdout and "member.registered.v1" in shown.stdout

    redriven = scte(platform, "dlq", "redrive", DLQ, message_id)
    assert redriven.returncode == 0 and "1 of 1 message moved back" in redriven.stdout, redriven.stderr
    deadline = time.monotonic() + 120
    while not platform.mails(email):
        assert time.monotonic() < deadline, "the redriven message was never processed"
        time.sleep(0.5)

    refused = scte(platform, "dlq", "show", "notifications")
    assert refused.returncode == 2 and "not a dead-letter queue" in refused.stderr
