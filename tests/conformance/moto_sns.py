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

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import moto_sqs

HERE = Path(__file__).resolve().parent
DESELECTED = HERE / "moto_sns_deselected.txt"


def read_deselected() -> list[tuple[str, str]]:
    """(node id, reason) pairs of `moto_sns_deselected.txt` (moto_sqs's parser, on this file)."""
    moto_sqs.DESELECTED = DESELECTED
    return moto_sqs.read_deselected()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("pytest_args", nargs="*")
    args = parser.parse_args()

    root = moto_sqs.moto_tests()
    if not (root / "tests" / "test_sns").is_dir():
        raise SystemExit(f"the moto {moto_sqs.MOTO_VERSION} sdist has no tests/test_sns")
    deselected = read_deselected()
    port = moto_sqs.free_port(args.port)
    endpoint = f"http://localhost:{port}"
    data = Path(tempfile.mkdtemp(prefix="scte-moto-sns-"))
    log = open(data / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    env.pop("AWS_ENDPOINT_URL", None)
    serve = [sys.executable, "-m", "scte.cli", "queue", "serve", "--test-mode", "--host", "127.0.0.1"]
    server = subprocess.Popen(
        [*serve, "--port", str(port), "--data", str(data / "db")], stdout=log, stderr=subprocess.STDOUT, env=env
    )
    try:
        moto_sqs.wait_healthy(f"http://127.0.0.1:{port}", server)
        test_env = {
            **env,
            "TEST_SERVER_MODE": "true",
            "TEST_SERVER_MODE_ENDPOINT": endpoint,
            "AWS_DEFAULT_REGION": "us-east-1",
            "MOTO_CALL_RESET_API": "true",
        }
        cmd = [sys.executable, "-m", "pytest", "tests/test_sns", "-p", "no:cacheprovider", "-q", "-rfE"]
        cmd += ["-o", "addopts=", "--timeout=120", "-W", "ignore::DeprecationWarning"]
        for node, _reason in deselected:
            cmd += ["--ignore" if node.endswith(".py") else "--deselect", node]
        cmd += args.pytest_args
        print(f"moto {moto_sqs.MOTO_VERSION} tests/test_sns against scte queue serve on {endpoint}", flush=True)
        result = subprocess.run(cmd, cwd=root, env=test_env, stdout=subprocess.PIPE, text=True)
        sys.stdout.write(result.stdout)
        summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
        counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|deselected|error|errors|skipped)", summary)}
        ignored = sum(1 for n, _ in deselected if n.endswith(".py"))
        print(
            f"moto {moto_sqs.MOTO_VERSION} tests/test_sns: {counts.get('deselected', 0)} deselected, {ignored} files "
            f"ignored (reasons in {DESELECTED.name}), {counts.get('error', 0) + counts.get('errors', 0)} errors"
        )
        print(
            f"conformance-sns: {counts.get('passed', 0)} passed, {counts.get('failed', 0)} failed, "
            f"{counts.get('skipped', 0)} skipped"
        )
        return result.returncode
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        if server.returncode not in (0, -15):
            print((data / "server.log").read_text()[-5000:], file=sys.stderr)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
