"""The website's static files, all served from this machine (nothing from a CDN).

They come from registry packages installed by `make install` (npm, package-lock.json): the stylesheet
compiled from GOV.UK Frontend's Sass into `build/web/site.css` (`make assets`), GOV.UK Frontend's
fonts, images and script, and htmx, straight from `node_modules`. Our own small script is in
`scte/web/static`. Each URL carries a digest of the file (`?v=`), so browsers may keep them a year.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

import scte

__all__ = ["Assets", "project_root"]

log = logging.getLogger(__name__)

_HERE = Path(__file__).resolve().parent
_LONG_CACHE = "public, max-age=31536000, immutable"


def project_root() -> Path:
    """Where `node_modules` and `build/web` are: `SCTE_WEB_ROOT`, else the checkout holding `src/scte`."""
    given = os.environ.get("SCTE_WEB_ROOT")
    return Path(given) if given else Path(scte.__file__).resolve().parents[2]


@dataclass(frozen=True)
class _File:
    path: Path
    media_type: str


class Assets:
    """The files under `/static/` and their versioned URLs."""

    def __init__(self, root: Path | None = None) -> None:
        root = root or project_root()
        modules = root / "node_modules"
        self.govuk_assets = modules / "govuk-frontend" / "dist" / "govuk" / "assets"
        self.files: dict[str, _File] = {
            "site.css": _File(root / "build" / "web" / "site.css", "text/css"),
            "govuk-frontend.min.js": _File(
                modules / "govuk-frontend" / "dist" / "govuk" / "govuk-frontend.min.js", "text/javascript"
            ),
            "htmx.min.js": _File(modules / "htmx.org" / "dist" / "htmx.min.js", "text/javascript"),
            "site.js": _File(_HERE / "static" / "site.js", "text/javascript"),
        }
        self.versions: dict[str, str] = {}
        missing = []
        for name, item in self.files.items():
            try:
                self.versions[name] = hashlib.sha256(item.path.read_bytes()).hexdigest()[:12]
            except OSError:
                missing.append(str(item.path))
        if missing:
            log.warning("website assets missing (run `make install`): %s", ", ".join(missing))

    def url(self, name: str) -> str:
        """`/static/<name>?v=<digest>`."""
        version = self.versions.get(name, "missing")
        return f"/static/{name}?v={version}"

    def install(self, app: FastAPI) -> None:
        """Serve `/static/*` on `app`."""
        if self.govuk_assets.is_dir():
            app.mount("/static/govuk", StaticFiles(directory=self.govuk_assets), name="govuk-assets")

        @app.get("/static/{name}", include_in_schema=False)
        async def static_file(name: str) -> Response:
            item = self.files.get(name)
            if item is None or name not in self.versions:
                return Response("not found", status_code=404, media_type="text/plain")
            return FileResponse(item.path, media_type=item.media_type, headers={"Cache-Control": _LONG_CACHE})
