"""Conformance gate: moto's SNS test suite in server mode against `scte queue serve`.

    .venv/bin/python tests/conformance/moto_sns.py [--port N] [-- extra pytest args]

The same approach as `moto_sqs.py` (whose helpers it imports): the moto sdist of the pinned version,
extracted into the cache outside the repository; `scte queue serve --test-mode` on a fresh data
directory (test mode confirms http subscriptions at once, as moto does); `tests/test_sns` run with
`TEST_SERVER_MODE=true` against it, SNS and SQS clients both talking to the broker's one port. The tests
that need e-mail, SMS, Lambda, platform applications, other AWS services or moto's internals are
deselected, each with its reason, in `moto_sns_deselected.txt` beside this file. Exits non-zero unless
every selected test passes; prints `N passed, N failed, N deselected`.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import moto_sqs

DESELECTED = Path(__file__).resolve().parent / "moto_sns_deselected.txt"

if __name__ == "__main__":
    sys.exit(moto_sqs.run("test_sns", DESELECTED, "conformance-sns", (__doc__ or "").split("\n\n")[0]))
