"""Files on disk under `<data_dir>/media/`, addressed by storage key (`ab/abcdef/thumb.jpg`); in
production the same keys name S3 objects."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["FileStorage"]


class FileStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"storage key escapes the storage root: {key!r}")
        return path

    def write(self, key: str, data: bytes) -> int:
        """Write atomically (a reader never sees half a file); the number of bytes."""
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return len(data)

    def read(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()
