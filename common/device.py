"""Pick the torch device from the user's ``--device`` choice."""

import torch

from common.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """'auto' takes a GPU when one is present; 'cuda' without one is an error, not a fallback."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: no CUDA GPU is visible on this machine; use 'cpu'")
    if name != "cpu" and not name.startswith("cuda"):
        raise ConfigError(f"--device {name}: expected 'auto', 'cpu' or 'cuda[:N]'")
    return torch.device(name)
