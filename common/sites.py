"""Site folders: ``SITE/reference/*.nii[.gz]`` plus an optional ``SITE/site.toml``.

The folder's name is the site's name. A sites root holds one such folder per site.
"""

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from common.configs.site import SiteConfig
from common.configs.validation import parse_config
from common.errors import InputError
from common.nifti import is_nifti_path

SITE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
SITE_TOML = "site.toml"
REFERENCE_DIR = "reference"


@dataclass(frozen=True)
class SiteFolder:
    """One hospital's data as seen on its own disk."""

    name: str
    root: Path
    config: SiteConfig
    reference_files: tuple[Path, ...]


def read_site_config(root: Path) -> SiteConfig:
    path = root / SITE_TOML
    if not path.exists():
        return SiteConfig()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: not valid TOML ({error})") from None
    return parse_config(SiteConfig, data, str(path))


def read_site(root: Path) -> SiteFolder:
    """Describe a site folder; refuses a bad name, a missing ``reference/`` or no scans."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: site folder not found")
    name = root.resolve().name
    if not SITE_NAME_PATTERN.match(name):
        raise InputError(
            f"{root}: site name '{name}' must start with a letter or digit and use only "
            "letters, digits, '.', '_' or '-' (64 characters at most)"
        )
    reference = root / REFERENCE_DIR
    if not reference.is_dir():
        raise InputError(f"{root}: no '{REFERENCE_DIR}/' folder with the site's reference cases")
    files = tuple(sorted(p for p in reference.iterdir() if p.is_file() and is_nifti_path(p)))
    if not files:
        raise InputError(f"{reference}: no .nii or .nii.gz reference cases found")
    return SiteFolder(name=name, root=root, config=read_site_config(root), reference_files=files)


def discover_sites(sites_root: Path, names: Sequence[str] = ()) -> list[SiteFolder]:
    """All site folders under ``sites_root`` (sorted by name), or only the ``names`` asked for."""
    sites_root = Path(sites_root)
    if not sites_root.is_dir():
        raise InputError(f"{sites_root}: sites root folder not found")
    available = {p.name: p for p in sorted(sites_root.iterdir()) if (p / REFERENCE_DIR).is_dir()}
    if not available:
        raise InputError(
            f"{sites_root}: no site folders (expected SITE/{REFERENCE_DIR}/*.nii.gz inside)"
        )
    unknown = [name for name in names if name not in available]
    if unknown:
        raise InputError(
            f"{sites_root}: no site named {', '.join(unknown)} (available: {', '.join(available)})"
        )
    chosen = list(dict.fromkeys(names)) or list(available)
    return [read_site(available[name]) for name in chosen]
