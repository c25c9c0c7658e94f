"""How the harmonizer is trained, locally or in one federated round."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TrainingConfig(BaseModel):
    """Optimisation settings; the defaults fit a 2-core laptop with 2 mm phantoms."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: int = Field(default=4, ge=1, le=10_000, description="passes over all slices")
    batch_size: int = Field(default=16, ge=1, le=1024)
    learning_rate: float = Field(default=2e-3, gt=0.0, le=1.0)
    weight_decay: float = Field(default=0.0, ge=0.0, le=1.0)
    gradient_loss_weight: float = Field(
        default=0.5, ge=0.0, le=100.0, description="weight of the L1 loss on image gradients"
    )
    min_slice_foreground: float = Field(
        default=0.05, ge=0.0, lt=1.0, description="skip axial slices with less foreground"
    )
    non_reference_targets: Literal["full", "coarse", "pseudo"] = Field(
        default="pseudo",
        description="what cases of sites outside the reference contrast teach: 'full' = "
        "everything, like reference cases; 'coarse' = contrast, shading and anatomy only "
        "(loss on blurred images), so their scanner's noise and blur are not learned; "
        "'pseudo' = 'coarse' in the first round (pooled: epoch), then the current model's "
        "harmonization of the site's own cases, which teaches fine detail too",
    )
    coarse_sigma: float = Field(
        default=2.0, gt=0.0, le=8.0, description="blur (pixels) of the 'coarse' loss"
    )
    pseudo_target_passes: int = Field(
        default=2,
        ge=1,
        le=4,
        description="'pseudo': how many times the global model is applied to a "
        "non-reference case to make its target. One pass keeps part of that scanner's noise "
        "and blur, and the site would teach the network to keep it; a second pass removes "
        "more (docs/training-targets.md)",
    )
    pseudo_target_denoise: float = Field(
        default=0.04,
        ge=0.0,
        le=0.5,
        description="'pseudo': total-variation denoising weight applied to each pseudo-target "
        "slice, in profile units (the profile's 99th percentile is 1); 0 = off. The model "
        "sharpens a foreign scan and lifts its noise with the edges; this flattens that grain "
        "and keeps the edges, so the site does not teach it back (docs/training-targets.md)",
    )
    pseudo_target_denoise_follows_share: bool = Field(
        default=True,
        description="'pseudo': scale the denoising weight by the reference sites' share of the "
        "training cases: in full where they hold a third or more, off at a sixth or less, "
        "linear between. Where reference cases are few, the foreign cases' fine detail is "
        "worth more than their grain costs (docs/training-targets.md, stop 19); "
        "false = the weight as given",
    )
    non_reference_weight: float = Field(
        default=1.0,
        gt=0.0,
        le=1.0,
        description="how much a non-reference site counts against a reference site: "
        "the weight of its slices in pooled training, of its update in the federation",
    )
    non_reference_share: float = Field(
        default=0.25,
        gt=0.0,
        le=1.0,
        description="federation: the share of a non-reference site's training slices it "
        "trains on in each round (a fresh seeded subset every round). Below 1 the budget "
        "moves toward the reference sites' clean targets; the default 0.25 goes with the "
        "default 10 rounds, which then cost what 5 full rounds did (docs/training-targets.md)",
    )
    keep_optimizer_state: bool = Field(
        default=True,
        description="federation: each site keeps its optimizer's moment estimates on its own "
        "disk between rounds (they never leave the site); false restarts them every round",
    )
    seed: int = Field(default=0, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
