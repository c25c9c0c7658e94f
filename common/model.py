"""The harmonizer: a small 2D U-Net with residual output.

Built from named blocks; every hyperparameter comes from :class:`UNetConfig`,
which is saved with the weights. GroupNorm/InstanceNorm keep no running
statistics, so weights average cleanly across sites.
"""

from functools import lru_cache
from types import MappingProxyType

import torch
import torch.nn.functional as F
from torch import nn

from common.configs.model import UNetConfig


def _norm(channels: int, config: UNetConfig) -> nn.Module:
    if config.norm == "instance":
        return nn.InstanceNorm2d(channels, affine=True, track_running_stats=False)
    return nn.GroupNorm(min(config.groups, channels), channels)


class ConvBlock(nn.Sequential):
    """Two 3x3 convolutions, each followed by normalization and SiLU."""

    def __init__(self, in_channels: int, out_channels: int, config: UNetConfig) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            _norm(out_channels, config),
            nn.SiLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            _norm(out_channels, config),
            nn.SiLU(inplace=True),
        )


class DownBlock(nn.Sequential):
    """Halve the resolution, then a :class:`ConvBlock` that doubles the channels."""

    def __init__(self, in_channels: int, out_channels: int, config: UNetConfig) -> None:
        super().__init__(nn.MaxPool2d(2), ConvBlock(in_channels, out_channels, config))


class UpBlock(nn.Module):
    """Upsample, concatenate the skip connection, then a :class:`ConvBlock`."""

    def __init__(self, in_channels: int, skip_channels: int, config: UNetConfig) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, skip_channels, 2, stride=2)
        self.conv = ConvBlock(2 * skip_channels, skip_channels, config)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([self.up(x), skip], dim=1))


@torch.no_grad()
def start_from_centre_slice(conv: nn.Conv2d) -> None:
    """Let a 2.5D stem begin as a 2D one: it reads only the centre slice at first.

    The residual output adds the centre slice, so removing its noise and blur
    needs features that single it out. Drawn alike for every slice, the stem
    first has to learn which one the centre is; on a small site that stalled
    training near the identity (docs/training-targets.md, "2.5D input"). The
    neighbours' weights start at zero and grow as their gradients ask; the
    centre's are scaled to a one-slice stem's initial spread, so a one-slice
    stem is left exactly as drawn.
    """
    channels = conv.weight.shape[1]
    centre = conv.weight[:, channels // 2].clone()
    conv.weight.zero_()
    conv.weight[:, channels // 2] = centre * channels**0.5


class HarmonizerUNet(nn.Module):
    """Maps altered slices to the reference contrast.

    Input ``(B, in_channels, H, W)`` of any H, W (padded internally to a multiple
    of ``2**depth`` and cropped back); output ``(B, 1, H, W)``. With ``residual``
    the network predicts a correction added to the centre input slice, so an
    untrained or zero-initialised head starts at the identity.
    """

    def __init__(self, config: UNetConfig | None = None) -> None:
        super().__init__()
        self.config = config or UNetConfig()
        c = self.config.base_channels
        widths = [c * 2**level for level in range(self.config.depth + 1)]
        self.stem = ConvBlock(self.config.in_channels, widths[0], self.config)
        self.downs = nn.ModuleList(
            DownBlock(widths[i], widths[i + 1], self.config) for i in range(self.config.depth)
        )
        self.ups = nn.ModuleList(
            UpBlock(widths[i + 1], widths[i], self.config)
            for i in reversed(range(self.config.depth))
        )
        start_from_centre_slice(self.stem[0])
        self.head = nn.Conv2d(widths[0], 1, 1)
        if self.config.residual:
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        multiple = 2**self.config.depth
        pad_h, pad_w = (-height) % multiple, (-width) % multiple
        padded = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else x
        skips = [self.stem(padded)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        y = skips.pop()
        for up in self.ups:
            y = up(y, skips.pop())
        y = self.head(y)[..., :height, :width]
        if self.config.residual:
            centre = self.config.in_channels // 2
            y = y + x[:, centre : centre + 1]
        return y


def input_channels(model: nn.Module) -> int:
    """How many neighbouring slices ``model`` takes per input (its ``in_channels``).

    A module without a :class:`UNetConfig` (a stand-in in tests) takes one.
    """
    config = getattr(model, "config", None)
    return config.in_channels if isinstance(config, UNetConfig) else 1


def build_model(config: UNetConfig, seed: int) -> HarmonizerUNet:
    """Construct the network with weights drawn from ``seed``, leaving global RNG alone."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return HarmonizerUNet(config)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@lru_cache(maxsize=8)
def parameter_shapes(config: UNetConfig) -> MappingProxyType:
    """Name -> shape of every tensor in the model's state dict (read-only, built once)."""
    state = build_model(config, seed=0).state_dict()
    return MappingProxyType({name: tuple(t.shape) for name, t in state.items()})


@lru_cache(maxsize=8)
def trainable_shapes(config: UNetConfig) -> tuple[tuple[int, ...], ...]:
    """Shapes of the trainable parameters in optimizer order (built once)."""
    return tuple(tuple(p.shape) for p in build_model(config, seed=0).parameters())
