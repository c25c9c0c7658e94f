"""Per-site settings, read from the optional ``SITE/site.toml``."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class SiteConfig(BaseModel):
    """What a hospital states about its own reference cases.

    ``reference_contributor`` says whether the site's cases may shape the shared
    reference contrast (the consortium profile); every site trains either way.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    modality: Literal["T1w", "T2w", "FLAIR", "PDw"] = "T1w"
    reference_contributor: bool = True
    description: str = Field(default="", max_length=500)
