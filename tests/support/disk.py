"""A small or read-only filesystem for storage-fault tests (a tmpfs; skipped where mounting is not permitted)."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def small_disk(where: Path, size_mb: int = 24, read_only: bool = False) -> Iterator[Path]:
    """A tmpfs of ``size_mb`` mounted at ``where`` for the block (skipped where mounting is not permitted)."""
    where.mkdir(parents=True, exist_ok=True)
    options = f"size={size_mb}m" + (",ro" if read_only else "")
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({out.stderr.strip()}); "
                    "the RLIMIT_FSIZE variants cover a full disk without mounting")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
