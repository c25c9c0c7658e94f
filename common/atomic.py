"""Write a file so that readers see the old one or the new one, never half of it."""

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_atomically(path: Path, write: Callable[[str], None], *, mode: int = 0o644) -> Path:
    """Call ``write(temporary_path)`` next to ``path``, then rename it into place.

    The temporary file lives in the same folder (a rename across file systems
    would not be atomic) and is removed if ``write`` fails. ``mode`` replaces
    mkstemp's private 0600, since these files are meant to be read by others.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(handle)
    try:
        os.chmod(temporary, mode)
        write(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path
