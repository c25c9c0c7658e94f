"""Write a phantom folder in the layout of DESIGN.md.

Every site gets its own reference subjects; the test subjects travel to every
site and are also rendered under the reference protocol without any scanner
effect (the ground truth). Subject numbers are global, so reference and test
subjects are disjoint by construction. All randomness derives from
(seed, stream, subject, site), so the same request gives the same bytes.
"""

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from common.errors import HarmonizationError
from common.nifti import save_nifti
from simulations.phantoms.anatomy import Anatomy, load_template, sample_displacement, warp
from simulations.phantoms.scanner import AppliedEffects, apply_effects, sample_effects
from simulations.phantoms.sequences import render
from simulations.phantoms.sites import ConsortiumConfig, Modality, SiteConfig
from simulations.phantoms.tissues import LITERATURE, TissueJitter, tissue_parameters

logger = logging.getLogger(__name__)

GENERATOR = "fedharmonize.simulations.phantoms"
GENERATOR_VERSION = "1"
OWNED_ENTRIES = ("sites", "test", "manifest.json", "preview.png")
MASK_NAMES = ("brain", "gm", "wm", "csf")
STREAM_ANATOMY = 1
STREAM_SCAN = 2
WM_CORE_FRACTION = 0.9
GROUNDTRUTH_PERCENTILE = 99.0

Progress = Callable[[str], None]


class PhantomRequest(BaseModel):
    """What to generate; the consortium (sites and protocols) is passed separately."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subjects: int = Field(default=4, ge=1, le=200, description="reference subjects per site")
    test_subjects: int = Field(default=2, ge=1, le=200)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    resolution_mm: Literal[1, 2] = 2
    modality: Modality = "T1w"
    skull: bool = False


@dataclass(frozen=True)
class Subject:
    """One synthetic person: warped anatomy plus their own tissue properties."""

    name: str
    number: int
    anatomy: Anatomy
    jitter: TissueJitter
    record: dict[str, Any]


def make_subject(template: Anatomy, seed: int, number: int) -> Subject:
    """Subject ``number`` of run ``seed``: a random warp of the template and tissue jitter."""
    seed_path = [seed, STREAM_ANATOMY, number]
    rng = np.random.default_rng(np.random.SeedSequence(seed_path))
    displacement, rms_mm = sample_displacement(template, rng)
    jitter = TissueJitter.sample(rng)
    record = {
        "seed_path": seed_path,
        "deformation_rms_mm": round(rms_mm, 4),
        "tissue_jitter_t1_t2_pd": {t: [round(f, 5) for f in v] for t, v in jitter.factors.items()},
    }
    return Subject(f"sub-{number:03d}", number, warp(template, displacement), jitter, record)


def scan_seed_path(seed: int, subject: Subject, site_index: int) -> list[int]:
    return [seed, STREAM_SCAN, subject.number, site_index]


def scan(
    subject: Subject, site: SiteConfig, site_index: int, modality: Modality, seed: int
) -> tuple[np.ndarray, AppliedEffects, float]:
    """The subject scanned at ``site``: image, the effects applied, noise SD in output units."""
    protocol = site.protocols[modality]
    params = tissue_parameters(protocol.field_strength_t, subject.jitter)
    ideal = render(protocol, subject.anatomy.fractions, params)
    core = subject.anatomy.fractions["wm"] > WM_CORE_FRACTION
    reference_signal = float(ideal[core].mean())
    rng = np.random.default_rng(np.random.SeedSequence(scan_seed_path(seed, subject, site_index)))
    applied = sample_effects(site.effects, rng)
    brain = subject.anatomy.brain > 0.5
    image = apply_effects(ideal, applied, subject.anatomy.spacing_mm, brain, reference_signal)
    sigma = 0.0 if applied.snr is None else reference_signal / applied.snr * applied.gain
    return image, applied, sigma


def groundtruth(subject: Subject, consortium: ConsortiumConfig, modality: Modality) -> np.ndarray:
    """The reference protocol without effects, scaled so the brain's 99th percentile is 1."""
    protocol = consortium.reference_protocols[modality]
    params = tissue_parameters(protocol.field_strength_t, subject.jitter)
    ideal = render(protocol, subject.anatomy.fractions, params)
    top = float(np.percentile(ideal[subject.anatomy.brain > 0.5], GROUNDTRUTH_PERCENTILE))
    return ideal / np.float32(top)


def count_outputs(request: PhantomRequest, consortium: ConsortiumConfig) -> int:
    """Files :func:`generate_phantoms` writes: scans, site.toml, masks, manifest, preview."""
    n_sites = len(consortium.sites)
    per_test = n_sites + 1 + len(MASK_NAMES)
    return n_sites * (request.subjects + 1) + request.test_subjects * per_test + 2


def prepare_output(out: Path, force: bool) -> None:
    """Refuse a non-empty ``out`` unless ``force``; with it, remove only what we generate."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise HarmonizationError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise HarmonizationError(
                f"{out}: folder is not empty; choose a new folder or pass --force to overwrite"
            )
        for name in OWNED_ENTRIES:
            entry = out / name
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            elif entry.exists() or entry.is_symlink():
                entry.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(payload, stream, indent=2)
            stream.write("\n")
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def _write_site_toml(folder: Path, is_reference: bool, modality: str) -> None:
    """Only the reference site contributes to the shared reference contrast by default."""
    role = "the reference-protocol site" if is_reference else "a non-reference site"
    text = (
        f"# written by 'fedharmonize phantoms': {role}\n"
        f'modality = "{modality}"\n'
        f"reference_contributor = {'true' if is_reference else 'false'}\n"
    )
    (folder / "site.toml").write_text(text, encoding="utf-8")


def generate_phantoms(
    out: Path,
    request: PhantomRequest,
    consortium: ConsortiumConfig,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write the phantom folder into ``out`` (which :func:`prepare_output` has readied).

    Returns the manifest, which is also written to ``out/manifest.json``.
    """
    from simulations.phantoms.preview import write_preview  # matplotlib only when needed

    out = Path(out)
    consortium.check_modality(request.modality, "sites config")
    report = progress or (lambda _name: None)
    template = load_template(request.resolution_mm, request.skull)
    modality, seed, k = request.modality, request.seed, request.subjects

    sites_record: dict[str, Any] = {}
    for site_index, site in enumerate(consortium.sites):
        cases = []
        for case in range(k):
            subject = make_subject(template, seed, site_index * k + case + 1)
            image, applied, sigma = scan(subject, site, site_index, modality, seed)
            relative = f"sites/{site.name}/reference/{subject.name}_{modality}.nii.gz"
            save_nifti(out / relative, image, template.affine)
            seed_path = scan_seed_path(seed, subject, site_index)
            cases.append(_case_record(relative, subject, seed_path, applied, sigma))
            report(relative)
        _write_site_toml(
            out / "sites" / site.name, site.name == consortium.reference_site, modality
        )
        sites_record[site.name] = {
            "protocol": site.protocols[modality].model_dump(mode="json"),
            "protocol_label": site.protocols[modality].label(),
            "effects": site.effects.model_dump(mode="json"),
            "reference_cases": cases,
        }

    test_record = []
    first_test = len(consortium.sites) * k + 1
    for number in range(first_test, first_test + request.test_subjects):
        subject = make_subject(template, seed, number)
        folder = f"test/{subject.name}"
        truth = f"{folder}/groundtruth_{modality}.nii.gz"
        save_nifti(out / truth, groundtruth(subject, consortium, modality), template.affine)
        report(truth)
        masks = {}
        for name, mask in subject.anatomy.masks().items():
            masks[name] = f"{folder}/{name}_mask.nii.gz"
            save_nifti(out / masks[name], mask, template.affine)
            report(masks[name])
        scans = {}
        for site_index, site in enumerate(consortium.sites):
            image, applied, sigma = scan(subject, site, site_index, modality, seed)
            relative = f"{folder}/{site.name}_{modality}.nii.gz"
            save_nifti(out / relative, image, template.affine)
            seed_path = scan_seed_path(seed, subject, site_index)
            scans[site.name] = _case_record(relative, subject, seed_path, applied, sigma)
            report(relative)
        test_record.append(
            {
                "subject": subject.name,
                "anatomy": subject.record,
                "groundtruth": truth,
                "masks": masks,
                "scans": scans,
            }
        )

    manifest = _manifest(request, consortium, template, sites_record, test_record)
    _write_json(out / "manifest.json", manifest)
    report("manifest.json")
    write_preview(out, manifest)
    report("preview.png")
    logger.info("phantoms written to %s", out)
    return manifest


def _case_record(
    relative: str, subject: Subject, seed_path: list[int], applied: AppliedEffects, sigma: float
) -> dict[str, Any]:
    return {
        "file": relative,
        "subject": subject.name,
        "anatomy": subject.record,
        "scan_seed_path": seed_path,
        "applied_effects": applied.model_dump(mode="json"),
        "noise_sigma": round(sigma, 6),
    }


def _manifest(
    request: PhantomRequest,
    consortium: ConsortiumConfig,
    template: Anatomy,
    sites_record: dict[str, Any],
    test_record: list[dict[str, Any]],
) -> dict[str, Any]:
    reference = consortium.reference_protocols[request.modality]
    return {
        "generator": GENERATOR,
        "generator_version": GENERATOR_VERSION,
        "request": request.model_dump(mode="json"),
        "modality": request.modality,
        "shape": list(template.shape),
        "voxel_size_mm": list(template.spacing_mm),
        "affine": [[float(v) for v in row] for row in template.affine],
        "anatomy_source": "nilearn MNI152 GM/WM templates and brain mask; CSF = mask - GM - WM",
        "tissue_parameters": {
            f"{field:g}T": {t: vars(p) for t, p in table.items()}
            for field, table in LITERATURE.items()
        },
        "reference_site": consortium.reference_site,
        "reference_protocol": reference.model_dump(mode="json"),
        "reference_protocol_label": reference.label(),
        "groundtruth_scaling": f"brain {GROUNDTRUTH_PERCENTILE:g}th percentile = 1.0",
        "sites": sites_record,
        "test": test_record,
        "preview": "preview.png",
    }
