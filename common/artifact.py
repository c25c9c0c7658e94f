"""The model artifact: what a site receives and what ``apply`` loads.

A folder with ``harmonizer.safetensors`` (weights, never pickle),
``harmonizer.json`` (architecture, reference profile, modality, provenance,
format version, weights digest) and, once signed, ``harmonizer.sig`` and
``signing.pub``. The folder is written beside its destination and renamed into
place, so a reader never sees half an artifact.
"""

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from common.configs.model import UNetConfig
from common.configs.validation import describe_validation_error
from common.errors import InputError
from common.model import HarmonizerUNet, build_model
from common.profile import ReferenceProfile

WEIGHTS_FILE = "harmonizer.safetensors"
METADATA_FILE = "harmonizer.json"
SIGNATURE_FILE = "harmonizer.sig"
PUBLIC_KEY_FILE = "signing.pub"
FORMAT_NAME = "fedharmonize-harmonizer"
FORMAT_VERSION = 1


class Provenance(BaseModel):
    """Where a model came from: enough for a privacy officer or a paper's methods section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["federated", "centralized", "local"]
    sites: tuple[str, ...]
    reference_sites: tuple[str, ...]
    rounds: int = Field(ge=0)
    strategy: str | None = None
    created: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    versions: dict[str, str] = Field(default_factory=dict)
    settings: dict[str, object] = Field(default_factory=dict)
    # Cases trained on, in all and at the reference sites: the pseudo-target
    # denoising weight follows their ratio. Models written before had none.
    training_cases: int | None = Field(default=None, ge=1)
    reference_training_cases: int | None = Field(default=None, ge=0)
    # The weight those counts gave, recorded so that a later change of the rule
    # cannot restate what an older model trained with. None where the model made
    # no pseudo-targets (other target modes, or only reference cases).
    pseudo_target_denoise_used: float | None = Field(default=None, ge=0)


class ArtifactMetadata(BaseModel):
    """Contents of ``harmonizer.json``; validated on load, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["fedharmonize-harmonizer"] = FORMAT_NAME
    format_version: Literal[1] = FORMAT_VERSION
    modality: str
    architecture: UNetConfig
    reference_profile: ReferenceProfile
    provenance: Provenance
    weights_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    # How apply prepares a scan before the landmark map: the same correction the
    # training targets had, so the network sees inputs from the domain it learned.
    # Models written before this field existed had none.
    input_bias_correction: Literal["none", "n4"] = "none"


@dataclass(frozen=True)
class Artifact:
    """A loaded, validated harmonizer ready to run."""

    directory: Path
    model: HarmonizerUNet
    metadata: ArtifactMetadata


ArtifactVerifier = Callable[[Path], None]
"""Checks a model folder before it is trusted (signature verification); raises on failure."""


def software_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {"torch": torch.__version__}
    for package in ("fedharmonize", "flwr", "numpy"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            continue
    return versions


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _replace_folder(staging: Path, directory: Path) -> None:
    """Move a fully written folder into place, retiring an older one."""
    if directory.exists():
        retired = directory.with_name(f".{directory.name}.old-{os.getpid()}")
        os.replace(directory, retired)
        os.replace(staging, directory)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(staging, directory)


def save_artifact(
    directory: Path,
    model: HarmonizerUNet,
    profile: ReferenceProfile,
    provenance: Provenance,
    *,
    input_bias_correction: Literal["none", "n4"] = "none",
) -> ArtifactMetadata:
    """Write the model folder atomically, replacing an older one at ``directory``."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        state = {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()}
        save_file(state, str(staging / WEIGHTS_FILE), metadata={"format": "pt"})
        metadata = ArtifactMetadata(
            modality=profile.modality,
            architecture=model.config,
            reference_profile=profile,
            provenance=provenance,
            weights_sha256=sha256_of(staging / WEIGHTS_FILE),
            input_bias_correction=input_bias_correction,
        )
        (staging / METADATA_FILE).write_text(metadata.model_dump_json(indent=2), encoding="utf-8")
        _replace_folder(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return metadata


def read_metadata(directory: Path) -> ArtifactMetadata:
    path = Path(directory) / METADATA_FILE
    if not path.is_file():
        raise InputError(f"{directory}: not a model folder (no {METADATA_FILE})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object")
    if data.get("format") != FORMAT_NAME:
        raise InputError(f"{path}: not a fedharmonize model (format {data.get('format')!r})")
    if data.get("format_version") != FORMAT_VERSION:
        raise InputError(
            f"{path}: model format version {data.get('format_version')!r} is not supported "
            f"by this fedharmonize (expects {FORMAT_VERSION}); upgrade fedharmonize"
        )
    try:
        return ArtifactMetadata.model_validate(data)
    except ValidationError as error:
        raise InputError(describe_validation_error(error, str(path))) from None


def load_state_checked(path: Path, model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Read safetensors weights and check names and shapes against ``model``."""
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise InputError(f"{path}: unreadable weights ({error})") from None
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    found = {name: tuple(t.shape) for name, t in state.items()}
    if found != expected:
        missing = sorted(set(expected) - set(found))
        extra = sorted(set(found) - set(expected))
        wrong = sorted(n for n in set(found) & set(expected) if found[n] != expected[n])
        raise InputError(
            f"{path}: weights do not fit the architecture "
            f"(missing {missing[:3]}, unexpected {extra[:3]}, wrong shape {wrong[:3]})"
        )
    return state


def load_artifact(directory: Path, verifier: ArtifactVerifier | None = None) -> Artifact:
    """Validate and load a model folder; ``verifier`` (signature check) runs first."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"{directory}: model folder not found")
    if verifier is not None:
        verifier(directory)
    metadata = read_metadata(directory)
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise InputError(f"{directory}: no {WEIGHTS_FILE}")
    if sha256_of(weights) != metadata.weights_sha256:
        raise InputError(f"{weights}: contents do not match the digest in {METADATA_FILE}")
    model = build_model(metadata.architecture, seed=0)
    model.load_state_dict(load_state_checked(weights, model))
    model.eval()
    return Artifact(directory=directory, model=model, metadata=metadata)


def store_received_artifact(
    directory: Path,
    state: dict[str, torch.Tensor],
    metadata_json: str,
    verifier: ArtifactVerifier | None = None,
) -> ArtifactMetadata:
    """Store a model sent by the server, exactly as sent, after checking it.

    The weights are re-serialized here; safetensors output is deterministic, so
    their digest must equal the one the server put in the metadata. Then the
    whole folder is verified (``verifier``, the signature hook) and loaded once
    before it replaces an older model.
    """
    directory = Path(directory)
    try:
        metadata = ArtifactMetadata.model_validate_json(metadata_json)
    except ValidationError as error:
        raise InputError(describe_validation_error(error, "received model metadata")) from None
    model = build_model(metadata.architecture, seed=0)
    model.load_state_dict(state)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        tensors = {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()}
        save_file(tensors, str(staging / WEIGHTS_FILE), metadata={"format": "pt"})
        if sha256_of(staging / WEIGHTS_FILE) != metadata.weights_sha256:
            raise InputError("received model: weights do not match the digest in its metadata")
        (staging / METADATA_FILE).write_text(metadata_json, encoding="utf-8")
        load_artifact(staging, verifier)
        _replace_folder(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return metadata
