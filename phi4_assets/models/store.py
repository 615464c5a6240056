"""Model directories written atomically: a temporary name first, renamed when complete."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

COMPLETE_MARKER = ".complete"


def final_dir(root: Path, name: str, version: str) -> Path:
    return Path(root) / name / version


def is_complete(path: Path) -> bool:
    return (Path(path) / COMPLETE_MARKER).exists()


@contextlib.contextmanager
def staged_model_dir(root: Path, name: str, version: str, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty temporary directory; on success it becomes ``root/name/version``.

    On an exception the temporary directory is removed and nothing appears under the final
    name. Leftovers of killed runs (``.tmp-*`` older than a day) are swept first.
    """
    parent = Path(root) / name
    parent.mkdir(parents=True, exist_ok=True)
    _sweep_stale(parent)
    target = parent / version
    tmp = parent / f".tmp-{version}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        (tmp / COMPLETE_MARKER).write_text(time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        if target.exists():
            if not overwrite and is_complete(target):
                shutil.rmtree(tmp)
                return
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _sweep_stale(parent: Path, max_age_s: float = 86400) -> None:
    now = time.time()
    for entry in parent.glob(".tmp-*"):
        with contextlib.suppress(OSError):
            if now - entry.stat().st_mtime > max_age_s:
                shutil.rmtree(entry, ignore_errors=True)
