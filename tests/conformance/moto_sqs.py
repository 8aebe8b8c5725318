"""Conformance gate: moto's SQS test suite in server mode against `scte queue serve`.

    .venv/bin/python tests/conformance/moto_sqs.py [--keep] [-- extra pytest args]

Downloads the moto sdist of the pinned version (`pip download --no-binary :all: --no-deps`), extracts its
`tests/` into a cache directory outside the repository, starts `scte queue serve --test-mode` on a fresh
data directory, and runs `tests/test_sqs` with `TEST_SERVER_MODE=true` and `TEST_SERVER_MODE_ENDPOINT`
pointing at it. The tests that read moto's own internals are deselected, each with its reason, in
`moto_sqs_deselected.txt` beside this file. Needs the `conformance` extra (`pip install -e '.[conformance]'`).
Exits non-zero unless every selected test passes; prints `N passed, N failed, N deselected`.

The port is 5000 when free: in server mode a few of moto's tests expect queue URLs on
`http://localhost:5000` (the default moto server address), and queue URLs take the host the client used.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path

MOTO_VERSION = "5.2.1"
HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DESELECTED = HERE / "moto_sqs_deselected.txt"
CACHE = Path(os.environ.get("SCTE_CONFORMANCE_CACHE", Path(tempfile.gettempdir()) / "scte-conformance"))


def moto_tests() -> Path:
    """The extracted moto source tree (cached); contains tests/test_sqs."""
    root = CACHE / f"moto-{MOTO_VERSION}"
    if (root / "tests" / "test_sqs").is_dir():
        return root
    CACHE.mkdir(parents=True, exist_ok=True)
    sdist = CACHE / f"moto-{MOTO_VERSION}.tar.gz"
    if not sdist.exists():
        pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:", "--no-deps"]
        subprocess.run([*pip, f"moto=={MOTO_VERSION}", "-d", str(CACHE)], check=True)
    prefix = f"moto-{MOTO_VERSION}/"
    with tarfile.open(sdist) as tar:
        members = [
            m
            for m in tar.getmembers()
            if m.name.startswith(prefix + "tests/") or m.name in (prefix + "pyproject.toml", prefix + "setup.cfg")
        ]
        tar.extractall(CACHE, members=members, filter="data")
    if not (root / "tests" / "test_sqs").is_dir():
        raise SystemExit(f"the moto {MOTO_VERSION} sdist has no tests/test_sqs")
    return root


def read_deselected(path: Path = DESELECTED) -> list[tuple[str, str]]:
    """(node id, reason) pairs of a deselection file; every line needs its reason."""
    out = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        node, _, reason = line.partition(" # ")
        if not reason.strip():
            raise SystemExit(f"{path.name}: no reason given for {node}")
        out.append((node.strip(), reason.strip()))
    return out


def free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with contextlib.closing(socket.socket()) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: TIME_WAIT is no obstacle
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise SystemExit("no free port")


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the server did not become healthy")


def run(suite: str, deselections: Path, label: str, description: str) -> int:
    """Run moto's `tests/<suite>` against a fresh `scte queue serve --test-mode`; the pytest exit code."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("pytest_args", nargs="*")
    args = parser.parse_args()

    root = moto_tests()
    if not (root / "tests" / suite).is_dir():
        raise SystemExit(f"the moto {MOTO_VERSION} sdist has no tests/{suite}")
    deselected = read_deselected(deselections)
    port = free_port(args.port)
    endpoint = f"http://localhost:{port}"
    data = Path(tempfile.mkdtemp(prefix=f"scte-moto-{suite}-"))
    log = open(data / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    env.pop("AWS_ENDPOINT_URL", None)
    serve = [sys.executable, "-m", "scte.cli", "queue", "serve", "--test-mode", "--host", "127.0.0.1"]
    server = subprocess.Popen(
        [*serve, "--port", str(port), "--data", str(data / "db")],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}", server)
        test_env = {
            **env,
            "TEST_SERVER_MODE": "true",
            "TEST_SERVER_MODE_ENDPOINT": endpoint,
            "AWS_DEFAULT_REGION": "us-east-1",
            "MOTO_CALL_RESET_API": "true",
        }
        cmd = [sys.executable, "-m", "pytest", f"tests/{suite}", "-p", "no:cacheprovider", "-q", "-rfE"]
        cmd += ["-o", "addopts=", "--timeout=120", "-W", "ignore::DeprecationWarning"]
        for node, _reason in deselected:
            # A whole file is ignored (not even imported: some import what is not installed).
            cmd += ["--ignore" if node.endswith(".py") else "--deselect", node]
        cmd += args.pytest_args
        print(f"moto {MOTO_VERSION} tests/{suite} against scte queue serve on {endpoint}", flush=True)
        result = subprocess.run(cmd, cwd=root, env=test_env, stdout=subprocess.PIPE, text=True)
        sys.stdout.write(result.stdout)
        summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
        counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|deselected|error|errors|skipped)", summary)}
        ignored = sum(1 for n, _ in deselected if n.endswith(".py"))
        print(
            f"moto {MOTO_VERSION} tests/{suite}: {counts.get('deselected', 0)} deselected, {ignored} files ignored "
            f"(reasons in {deselections.name}), {counts.get('error', 0) + counts.get('errors', 0)} errors"
        )
        print(
            f"{label}: {counts.get('passed', 0)} passed, {counts.get('failed', 0)} failed, "
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


def main() -> int:
    return run("test_sqs", DESELECTED, "conformance", __doc__.split("\n\n")[0])


if __name__ == "__main__":
    sys.exit(main())
