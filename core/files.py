"""Writing and reading FuseCap's own files safely.

Every file FuseCap writes whole (calibrations, take metadata, exports) goes
through `atomic_write_text`: a temporary file in the same folder, flushed
and synced, then renamed over the target, so a crash leaves either the old
file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to a temporary file in the same folder, synced, then
    renamed over `path`: a crash or a full disk never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file private; give it the permissions any new file gets.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_json(path: str | Path, doc: dict) -> None:
    atomic_write_text(path, json.dumps(doc, indent=1))


def read_json(path: str | Path) -> dict:
    """A JSON document; any failure to read or parse raises ValueError naming the file."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
    except RecursionError:  # arrays nested thousands deep: no FuseCap file is like that
        raise ValueError(f"{path}: nested too deeply to be a FuseCap file") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: not a FuseCap file")
    return doc
