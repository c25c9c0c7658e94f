"""Training the harmonizer on slices of prepared target volumes.

Each step takes a batch of target slices (already in the shared reference
contrast), alters them on the fly with the augmentation family, and teaches the
U-Net to undo the alteration. The loss is L1 inside the foreground plus an L1
term on image gradients, which keeps edges sharp. All randomness comes from one
generator derived from the run seed and a caller-given key (site, round), so a
run replays exactly on the CPU.
"""

import copy
import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from common.augment.stack import THROUGH_PLANE_MARGIN, StackAugmenter, context_slices
from common.configs.augmentation import AugmentationConfig
from common.configs.training import TrainingConfig
from common.errors import HarmonizationError
from common.input_mapping import map_slices, slice_landmarks
from common.model import input_channels
from common.slices import SliceSet
from common.target_denoising import total_variation_denoised

logger = logging.getLogger(__name__)


@dataclass
class TrainingResult:
    """What one call to :func:`train_harmonizer` did, for logs and federated metrics."""

    epoch_losses: list[float] = field(default_factory=list)
    step_losses: list[float] = field(default_factory=list)
    num_examples: int = 0
    optimizer_state: dict | None = None

    @property
    def final_loss(self) -> float:
        return self.epoch_losses[-1] if self.epoch_losses else float("nan")


def masked_l1(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over foreground pixels; shapes (B, H, W)."""
    weight = mask.to(prediction.dtype)
    return ((prediction - target).abs() * weight).sum() / weight.sum().clamp_min(1.0)


def masked_gradient_l1(
    prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """L1 between finite-difference gradients, where both neighbours are foreground."""
    loss = prediction.new_zeros(())
    for dim in (-2, -1):
        diff_pred = torch.diff(prediction, dim=dim)
        diff_target = torch.diff(target, dim=dim)
        both = mask.narrow(dim, 0, mask.shape[dim] - 1) & mask.narrow(dim, 1, mask.shape[dim] - 1)
        loss = loss + masked_l1(diff_pred, diff_target, both)
    return loss


def harmonization_loss(
    prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, gradient_weight: float
) -> torch.Tensor:
    loss = masked_l1(prediction, target, mask)
    if gradient_weight > 0:
        loss = loss + gradient_weight * masked_gradient_l1(prediction, target, mask)
    return loss


def gaussian_lowpass(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, H, W) images, sigma in pixels, replicate borders."""
    radius = max(1, round(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    x = images[:, None]
    x = torch.nn.functional.pad(x, (radius, radius, radius, radius), mode="replicate")
    x = torch.nn.functional.conv2d(x, kernel.view(1, 1, -1, 1))
    x = torch.nn.functional.conv2d(x, kernel.view(1, 1, 1, -1))
    return x[:, 0]


def split_loss(
    prediction: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    detail: torch.Tensor,
    gradient_weight: float,
    coarse_sigma: float,
    coarse_weight: float = 1.0,
) -> torch.Tensor:
    """Full loss on slices that teach detail; on the others, the loss of blurred images.

    A non-reference site's target carries its own scanner's noise and blur. Compared
    after the same Gaussian blur, prediction and target agree on contrast, shading
    and anatomy but the target's fine texture is not taught: that comes from the
    reference sites' slices. A coarse row counts ``coarse_weight`` times a full row.
    """
    full = harmonization_loss(prediction[detail], target[detail], mask[detail], gradient_weight)
    coarse_rows = ~detail
    coarse = harmonization_loss(
        gaussian_lowpass(prediction[coarse_rows], coarse_sigma),
        gaussian_lowpass(target[coarse_rows], coarse_sigma),
        mask[coarse_rows],
        gradient_weight,
    )
    full_rows = detail.float().sum()
    weighted_coarse_rows = coarse_weight * coarse_rows.float().sum()
    share = full_rows / (full_rows + weighted_coarse_rows).clamp_min(1e-12)
    return share * full + (1 - share) * coarse


@torch.inference_mode()
def pseudo_targets(
    model: torch.nn.Module,
    slices: SliceSet,
    device: torch.device,
    batch_size: int = 32,
    passes: int = 1,
    denoise: float = 0.0,
) -> SliceSet:
    """Non-reference slices' targets replaced by ``model``'s harmonization of them.

    A non-reference site's own scan carries its scanner's noise and blur; the
    current model, taught fine detail by the reference sites, gives a cleaner
    version of the same anatomy. Those outputs then teach everything, detail
    included (progressive pseudo-targets, issue 6). Reference slices keep their
    own targets, which anchor the contrast. With ``passes`` > 1 the output is
    harmonized again: one pass leaves part of the scanner's noise and blur, which
    the site would otherwise teach back. The model is left in eval mode.

    A 2.5D model reads neighbours, which are then pseudo-targets too: each pass
    covers the rows that the next pass's (or training's) stacks read.

    ``denoise`` > 0: the final targets are then denoised by total variation at
    that weight, so the grain that the model lifts with the edges is not taught
    back (``common.target_denoising``).
    """
    if passes < 1:
        raise ValueError(f"passes must be at least 1, got {passes}")
    if slices.detail is None or bool(slices.detail.all()):
        return slices
    model.to(device).eval()
    reach = [slices.around(slices.centre_rows())]  # rows whose final targets are read
    for _ in range(passes - 1):  # an earlier pass feeds only the model's own neighbours
        reach.append(slices.around(reach[-1], input_channels(model) // 2))
    current = slices
    for rows in reversed(reach):
        rows = rows[~slices.detail[rows]]
        current = harmonized_rows(model, current, rows, device, batch_size)
    if denoise > 0:  # current.targets is harmonized_rows' own copy: denoise it in place
        final = reach[0][~slices.detail[reach[0]]]
        current.targets[final] = total_variation_denoised(
            current.targets[final], current.masks[final], denoise
        )
    return dataclasses.replace(current, detail=None)


def configured_pseudo_targets(
    model: torch.nn.Module, slices: SliceSet, device: torch.device, training: TrainingConfig
) -> SliceSet:
    """``pseudo_targets`` with the batch size, passes and denoising weight of ``training``."""
    return pseudo_targets(
        model,
        slices,
        device,
        training.batch_size,
        training.pseudo_target_passes,
        training.pseudo_target_denoise,
    )


def harmonized_rows(
    model: torch.nn.Module,
    slices: SliceSet,
    rows: torch.Tensor,
    device: torch.device,
    batch_size: int,
) -> SliceSet:
    """``slices`` with the stored ``rows``' targets replaced by ``model``'s output, masked.

    Every stack is read from the targets as they were before the call.
    """
    channels = input_channels(model)
    every = dataclasses.replace(slices, centres=None)  # a stack of any stored row
    targets = slices.targets.clone()
    for start in range(0, len(rows), batch_size):
        chosen = rows[start : start + batch_size]
        stacks = every.stacks(chosen, channels).to(device)
        output = model(stacks)[:, 0].clamp_min(0) * slices.masks[chosen].to(device)
        targets[chosen] = output.cpu()
    return dataclasses.replace(slices, targets=targets)


def proximal_term(
    model: torch.nn.Module, anchor: Sequence[torch.Tensor], mu: float
) -> torch.Tensor:
    """FedProx: mu/2 times the squared distance of the weights from ``anchor``."""
    total = sum(((p - a) ** 2).sum() for p, a in zip(model.parameters(), anchor, strict=True))
    return 0.5 * mu * total


def training_generator(seed: int, key: Sequence[int]) -> torch.Generator:
    """A private generator for one training call, from the run seed and a stable key."""
    state = np.random.SeedSequence([seed, *key]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & 0x7FFF_FFFF_FFFF_FFFF)


def detail_of(slices: SliceSet, index: torch.Tensor | None) -> torch.Tensor | None:
    """The batch's (or, with ``index`` None, every centre's) detail flags; None when all teach."""
    if slices.detail is None:
        return None
    flags = slices.detail[slices.centre_rows(index)]
    return None if bool(flags.all()) else flags


def target_landmarks_of(slices: SliceSet, percentiles: Sequence[float]) -> torch.Tensor:
    """Landmarks of every centre's target slice, measured in chunks: (N, L)."""
    rows = slices.centre_rows()
    return torch.cat(
        [
            slice_landmarks(
                slices.targets[rows[i : i + 256]], slices.masks[rows[i : i + 256]], percentiles
            )
            for i in range(0, len(slices), 256)
        ]
    )


def stack_width(slices: SliceSet, channels: int) -> int:
    """How many slices a training stack gathers: the model's, plus the blur margin if held.

    Raises when ``slices`` hold fewer neighbours than the model itself needs.
    """
    if channels == 1:
        return 1
    if slices.radius < channels // 2:
        raise HarmonizationError(
            f"the model takes {channels} slices but the training slices hold "
            f"{slices.radius} neighbours each side; collect them with "
            f"context={context_slices(channels)}"
        )
    return 2 * min(slices.radius, channels // 2 + THROUGH_PLANE_MARGIN) + 1


def altered_batch(
    slices: SliceSet,
    index: torch.Tensor,
    width: int,
    augmenter: StackAugmenter,
    generator: torch.Generator,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Clean centre targets ``(B, H, W)``, their masks and the altered stacks ``(B, C, H, W)``.

    Training and federated evaluation draw their batches alike, so both read them here.
    """
    stacks = slices.stacks(index, width).to(device)
    mask = slices.masks[slices.centre_rows(index)].to(device)
    altered, _ = augmenter(stacks, generator)
    return stacks[:, width // 2], mask, altered


def network_input(
    altered: torch.Tensor, mask: torch.Tensor, target: torch.Tensor, percentiles: Sequence[float]
) -> torch.Tensor:
    """Altered stacks ``(B, C, H, W)`` landmark-mapped onto the ``target`` landmarks ``(B, L)``.

    Every channel takes its centre slice's map (measured in the centre's ``mask``),
    as ``apply`` maps all slices of a volume with one map.
    """
    centre = altered[:, altered.shape[1] // 2]
    return map_slices(altered, slice_landmarks(centre, mask, percentiles), target)


def batch_loss(
    prediction: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    detail: torch.Tensor | None,
    training: TrainingConfig,
) -> torch.Tensor:
    """The training loss as configured for non-reference targets (see TrainingConfig)."""
    weight = training.gradient_loss_weight
    if detail is None or training.non_reference_targets == "full":
        return harmonization_loss(prediction, target, mask, weight)
    detail = detail.to(prediction.device)
    return split_loss(
        prediction,
        target,
        mask,
        detail,
        weight,
        training.coarse_sigma,
        training.non_reference_weight,
    )


def resume_optimizer(
    optimizer: torch.optim.Optimizer, state: dict, training: TrainingConfig
) -> None:
    """Load saved moments into ``optimizer``; the learning rate and decay stay as configured."""
    optimizer.load_state_dict(copy.deepcopy(state))  # the caller's copy stays as it was
    for group in optimizer.param_groups:
        group["lr"] = training.learning_rate
        group["weight_decay"] = training.weight_decay


def train_harmonizer(
    model: torch.nn.Module,
    slices: SliceSet,
    training: TrainingConfig,
    augmentation: AugmentationConfig,
    *,
    percentiles: Sequence[float],
    device: torch.device,
    key: Sequence[int] = (),
    proximal_mu: float = 0.0,
    progress: bool = True,
    description: str = "training",
    optimizer_state: dict | None = None,
) -> TrainingResult:
    """Train ``model`` in place for ``training.epochs`` passes over ``slices``.

    ``optimizer_state`` (an earlier result's ``optimizer_state``) resumes AdamW's
    moment estimates instead of starting them at zero; a federated site passes
    the one it kept on its own disk from the previous round.

    ``percentiles`` are the reference profile's landmark percentiles: each altered
    slice is landmark-mapped onto its target's landmarks before the network sees
    it, as ``apply`` maps a whole volume onto the profile. ``proximal_mu`` > 0 adds
    FedProx's term mu/2 * ||w - w_start||^2, which keeps a site's update near the
    global model it received.

    A 2.5D model (``in_channels`` > 1) gets each slice with its neighbours, held
    by ``slices`` (collected with ``context_slices(in_channels)``): the stack is
    blurred across slices and altered as one scan, and the loss is on the centre.
    """
    if len(slices) == 0:
        raise HarmonizationError("no usable slices: every slice is below the foreground threshold")
    generator = training_generator(training.seed, key)
    channels = input_channels(model)
    width = stack_width(slices, channels)
    augmenter = StackAugmenter(augmentation, channels)
    model.to(device).train()
    anchor = [p.detach().clone() for p in model.parameters()] if proximal_mu > 0 else []
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=training.learning_rate, weight_decay=training.weight_decay
    )
    if optimizer_state is not None:
        resume_optimizer(optimizer, optimizer_state, training)
    batches_per_epoch = -(-len(slices) // training.batch_size)
    # Targets change only when pseudo-targets are refreshed, so landmarks are measured then.
    current = slices
    target_landmarks = target_landmarks_of(current, percentiles)
    # Refreshed only in pooled training, where reference slices anchor the model; a
    # federated site gets its pseudo-targets from the global model instead.
    flags = detail_of(slices, None)
    refresh = training.non_reference_targets == "pseudo" and flags is not None and bool(flags.any())
    result = TrainingResult()
    bar = tqdm(
        total=training.epochs * batches_per_epoch,
        desc=description,
        unit="batch",
        disable=None if progress else True,
        leave=False,
    )
    with bar:
        for epoch in range(training.epochs):
            if refresh and epoch > 0:  # pooled training: the model so far makes the targets
                current = configured_pseudo_targets(model, slices, device, training)
                target_landmarks = target_landmarks_of(current, percentiles)
                model.train()
            order = torch.randperm(len(slices), generator=generator)
            epoch_loss, seen = 0.0, 0
            for start in range(0, len(slices), training.batch_size):
                index = order[start : start + training.batch_size]
                target, mask, altered = altered_batch(
                    current, index, width, augmenter, generator, device
                )
                mapped = network_input(
                    altered, mask, target_landmarks[index].to(device), percentiles
                )
                prediction = model(mapped)[:, 0]
                loss = batch_loss(prediction, target, mask, detail_of(current, index), training)
                if anchor:
                    loss = loss + proximal_term(model, anchor, proximal_mu)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                value = float(loss.detach())
                result.step_losses.append(value)
                epoch_loss += value * len(index)
                seen += len(index)
                bar.update(1)
                bar.set_postfix(loss=f"{value:.4f}")
            result.epoch_losses.append(epoch_loss / seen)
            result.num_examples += seen
            logger.debug("%s: epoch loss %.5f", description, result.epoch_losses[-1])
    model.eval()
    # the optimizer ends here, so its state needs no copy (a resume copies on load)
    result.optimizer_state = optimizer.state_dict()
    return result
