"""`python -m sync_chain <role> --port N --data DIR --public-key FILE [--smtp-port N] [--downstream r=url,...]`"""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn

from .app import ROLES, build_app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("role", choices=ROLES)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--public-key", type=Path, required=True)
    parser.add_argument("--smtp-port", type=int, default=1025)
    parser.add_argument("--downstream", default="", help="role=url,... (the orchestrator's chain)")
    parser.add_argument("--mode", choices=("serial", "fanout"), default="serial")
    parser.add_argument("--timeout", type=float, default=5.0, help="per downstream call, seconds")
    args = parser.parse_args()
    downstream = dict(item.split("=", 1) for item in args.downstream.split(",") if item)
    app = build_app(
        args.role,
        args.data,
        args.public_key,
        smtp_port=args.smtp_port,
        downstream=downstream,
        mode=args.mode,
        timeout=args.timeout,
    )
    # as the platform's services run: one process, uvicorn, no access log
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
