"""Every setting of a harmonizer run in one validated object.

Loaded from an optional TOML file with sections ``[model]``, ``[training]``,
``[augmentation]`` and ``[profile]``; command-line flags override single values.
"""

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from common.configs.augmentation import AugmentationConfig
from common.configs.model import UNetConfig
from common.configs.profile import ProfileConfig
from common.configs.training import TrainingConfig
from common.configs.validation import parse_config
from common.errors import InputError


class HarmonizerSettings(BaseModel):
    """Architecture, optimisation, augmentation and reference-profile settings together."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: UNetConfig = Field(default_factory=UNetConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    augmentation: AugmentationConfig = Field(default_factory=AugmentationConfig)
    profile: ProfileConfig = Field(default_factory=ProfileConfig)

    def with_overrides(self, section: str, **values: object) -> "HarmonizerSettings":
        """A copy with some fields of one section replaced, validated again."""
        given = {key: value for key, value in values.items() if value is not None}
        if not given:
            return self
        current = getattr(self, section).model_dump()
        merged = parse_config(
            type(getattr(self, section)), {**current, **given}, f"command-line {section} option"
        )
        return self.model_copy(update={section: merged})


def parse_settings(text: str, source: str) -> HarmonizerSettings:
    """Settings from TOML text; ``source`` names where it came from in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"{source}: not valid TOML ({error})") from None
    return parse_config(HarmonizerSettings, data, source)


def read_settings_text(path: Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: settings file not found") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text file") from None


def load_settings(path: Path | None) -> HarmonizerSettings:
    """Settings from a TOML file, or the defaults when ``path`` is None."""
    if path is None:
        return HarmonizerSettings()
    return parse_settings(read_settings_text(path), str(path))
