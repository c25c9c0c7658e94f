"""Synthetic site effects for self-supervised harmonization (DESIGN.md, method step 3).

``sample_alterations`` draws parameters, ``apply_alterations`` applies them
deterministically, ``Augmenter`` does both. Per-artifact samplers and
applications live in :mod:`.intensity`, :mod:`.kspace` and :mod:`.noise`.
"""

from common.augment.pipeline import (
    AlterationParams,
    Augmenter,
    apply_alterations,
    sample_alterations,
)

__all__ = ["AlterationParams", "Augmenter", "apply_alterations", "sample_alterations"]
