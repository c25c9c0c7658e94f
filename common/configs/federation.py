"""The federated run's settings, parsed once from Flower's flat ``run_config``.

Flower passes ``[tool.flwr.app.config]`` (and ``--run-config`` overrides) as a
flat mapping with kebab-case keys and scalar values. :class:`FederationConfig`
validates it before anything starts, so a typo or a bad value stops the run
with a message naming the key, not a traceback in round 3.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from common.configs.settings import HarmonizerSettings, parse_settings

Strategy = Literal["fedavg", "fedprox", "fedadam", "fedmedian", "fedtrimmedavg", "krum"]


class FederationConfig(BaseModel):
    """Run-wide settings shared by the ServerApp and every ClientApp."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=lambda name: name.replace("_", "-"),
        populate_by_name=True,
    )

    # 10 rounds with non-reference sites on a quarter of their slices per round
    # spend what 5 full rounds did (docs/training-targets.md)
    num_server_rounds: int = Field(default=10, ge=1, le=1000)
    local_epochs: int = Field(default=1, ge=1, le=1000)
    strategy: Strategy = "fedavg"
    seed: int = Field(default=0, ge=0)
    proximal_mu: float = Field(default=0.01, ge=0.0, le=10.0, description="FedProx only")
    server_learning_rate: float = Field(default=0.01, gt=0.0, le=1.0, description="FedAdam only")
    trimmed_fraction: float = Field(default=0.2, ge=0.0, lt=0.5, description="FedTrimmedAvg")
    krum_byzantine: int = Field(default=0, ge=0, le=100, description="Krum: nodes to tolerate")
    min_sites: int = Field(default=2, ge=1, le=10_000)
    reference_sites: str = Field(
        default="", description="comma-separated site names; empty: every willing site"
    )
    settings_toml: str = Field(
        default="",
        description="harmonizer settings as TOML text; carried in the run config so that "
        "every site gets the same settings without a shared file system",
    )
    run_dir: str = Field(default="", description="server: where checkpoints and model go")
    sites_root: str = Field(default="", description="simulation: one folder per virtual site")
    resume: bool = False
    device: str = Field(default="auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    reply_timeout_s: float = Field(default=3600.0, gt=0.0)

    @field_validator("reference_sites")
    @classmethod
    def _names(cls, value: str) -> str:
        return ",".join(name.strip() for name in value.split(",") if name.strip())

    @property
    def reference_site_names(self) -> tuple[str, ...]:
        return tuple(name for name in self.reference_sites.split(",") if name)

    def harmonizer_settings(self) -> HarmonizerSettings:
        """The TOML settings file (or defaults), with this run's seed and local epochs."""
        settings = (
            parse_settings(self.settings_toml, "run config 'settings-toml'")
            if self.settings_toml
            else HarmonizerSettings()
        )
        return settings.with_overrides("training", epochs=self.local_epochs, seed=self.seed)
