"""The two servers of the body-limit tests, each its own process (so the gateway's memory is its own):

python limits_servers.py upstream PORT         a service made by `create_app`: POST /members (JSON),
                                               POST /media (an upload: counts the bytes it reads)
python limits_servers.py gateway PORT URL      the gateway, routing `members` and `media` to URL
"""

from __future__ import annotations

import sys

import uvicorn
from fastapi import APIRouter, Request
from pydantic import BaseModel

from scte.kit.app import MAX_UPLOAD_BODY_SIZE, create_app
from scte.web.gateway import create_gateway

router = APIRouter()
received = {"media": 0}


class Member(BaseModel):
    name: str


@router.post("/members")
async def register(member: Member) -> dict[str, str]:
    return {"name": member.name}


@router.post("/media", max_body_size=MAX_UPLOAD_BODY_SIZE)
async def upload(request: Request) -> dict[str, int]:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        received["media"] += len(chunk)
    return {"received": size}


@router.get("/received")
async def read_received() -> dict[str, int]:
    return received


def main() -> None:
    role, port = sys.argv[1], int(sys.argv[2])
    if role == "upstream":
        app = create_app("demo", [router])
    else:
        app = create_gateway({"members": sys.argv[3], "media": sys.argv[3]})
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
