"""Conformance gate: moto's SQS test suite in server mode against `scte queue serve`.

    .venv/bin/python tests/conformance/moto_sqs.py [--keep] [-- extra pytest args]

Downloads the moto sdist of the pinned version (`pip download --no-binary :all: --no-deps`), extracts its
`tests/` into a cache directory outside the repository, starts `scte queue serve --test-mode` on a fresh
data directory, and runs `tests/test_sqs` with `TEST_SERVER_MODE=true` and `TEST_SERVER_MODE_ENDPOINT`
pointing at it. The tests that read moto's own internals are deselected, each with its reason, in
`moto_sqs_deselected.txt` beside this file. Needs the `conformance` extra (`pip install -e '.[conformance]'`).
Exits non-zero unless every selected test passes; prints `N passed, N failed, N deselected`.

The port is 5000: in server mode a few of moto's tests expect queue URLs on `http://localhost:5000` (the
default moto server address), and queue URLs take the host the client used. When 5000 is taken on this
machine, the gate runs itself in a network namespace of its own (`unshare -n`, loopback only), where 5000
is free; without `unshare`, it takes a free port and deselects the tests that hard-code 5000, saying so.

A deselection line that matches no collected test or also drops tests it does not name, or an ignored file
that does not exist, fails the gate (deselection_guard.py): pytest would ignore a stale line silently and
deselect by prefix.
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


# moto tests that hard-code http://localhost:5000 in the queue URLs they expect (server mode).
PORT_5000_TESTS = {
    "test_sqs": (
        "tests/test_sqs/test_sqs.py::test_create_queues_in_multiple_region",
        "tests/test_sqs/test_sqs.py::test_get_queue_with_prefix",
    ),
}
IN_NAMESPACE = "SCTE_CONFORMANCE_IN_NETNS"


def port_free(port: int) -> bool:
    with contextlib.closing(socket.socket()) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: TIME_WAIT is no obstacle
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def in_own_network() -> list[str] | None:
    """The command prefix that runs a command in a new network namespace with loopback up, if possible."""
    unshare, ip = shutil.which("unshare"), shutil.which("ip")
    if unshare is None or ip is None:
        return None
    prefix = [unshare, "--net"] if os.geteuid() == 0 else [unshare, "--net", "--map-root-user"]
    probe = subprocess.run([*prefix, ip, "link", "set", "lo", "up"], capture_output=True)
    return prefix if probe.returncode == 0 else None


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

    root = moto_tests()  # downloads first: a network namespace below has no way out
    if not (root / "tests" / suite).is_dir():
        raise SystemExit(f"the moto {MOTO_VERSION} sdist has no tests/{suite}")
    deselected = read_deselected(deselections)
    missing = [n for n, _ in deselected if n.endswith(".py") and not (root / n).is_file()]
    if missing:
        print(f"{label}: ignored files that do not exist in moto {MOTO_VERSION}: {', '.join(missing)}")
        return 4
    if args.port == 5000 and not port_free(5000) and os.environ.get(IN_NAMESPACE) != "1":
        prefix = in_own_network()
        if prefix is not None:
            print(f"port 5000 is taken here: running {label} in a network namespace of its own", flush=True)
            script = 'ip link set lo up && exec "$@"'
            inner = [sys.executable, sys.argv[0], *sys.argv[1:]]
            return subprocess.run(
                [*prefix, "sh", "-c", script, "sh", *inner], env={**os.environ, IN_NAMESPACE: "1"}
            ).returncode
    port = free_port(args.port)
    if port != 5000:
        for node in PORT_5000_TESTS.get(suite, ()):
            print(f"{label}: port 5000 is taken and no network namespace: deselected {node} (expects 5000)")
            deselected.append((node, "expects queue URLs on http://localhost:5000"))
    endpoint = f"http://localhost:{port}"
    data = Path(tempfile.mkdtemp(prefix=f"scte-moto-{suite}-"))
    log = open(data / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    env.pop("AWS_ENDPOINT_URL", None)
    serve = [sys.executable, "-m", "scte.cli", "queue", "serve", "--test-mode", "--host", "127.0.0.1"]
    serve += ["--queue-urls", "plain"]  # moto expects queue URLs without a region (http://HOST:PORT/ACCOUNT/NAME)
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
        if not args.pytest_args:  # the whole gate: every deselection must match a test
            cmd += ["-p", "deselection_guard"]
            test_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), test_env.get("PYTHONPATH")]))
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
