import nibabel as nib
import numpy as np
import pytest

from simulations.phantoms.anatomy import (
    SCALP_INNER_MM,
    SCALP_OUTER_MM,
    load_template,
    sample_displacement,
    warp,
)


@pytest.mark.slow  # the first template load of the session
def test_template_is_mni152_at_2mm_in_ras() -> None:
    template = load_template(2)

    assert template.shape == (99, 117, 95)
    assert template.spacing_mm == (2.0, 2.0, 2.0)
    assert nib.aff2axcodes(template.affine) == ("R", "A", "S")
    assert load_template(2) is template  # loaded once per process


def test_tissue_fractions_are_valid_and_fill_the_brain() -> None:
    template = load_template(2)
    gm, wm, csf = (template.fractions[t] for t in ("gm", "wm", "csf"))

    total = gm + wm + csf

    assert min(float(a.min()) for a in (gm, wm, csf)) >= 0.0
    assert float(total.max()) <= 1.0 + 1e-5
    np.testing.assert_allclose(total[template.brain > 0.5], 1.0, atol=1e-5)
    assert float(total[template.brain == 0].max()) == 0.0
    assert not template.fractions["fat"].any()
    with pytest.raises(ValueError, match="read-only"):
        template.fractions["gm"][0, 0, 0] = 1.0


def test_masks_partition_the_brain() -> None:
    masks = load_template(2).masks()

    union = masks["gm"] | masks["wm"] | masks["csf"]
    overlaps = (
        (masks["gm"] & masks["wm"]) | (masks["gm"] & masks["csf"]) | (masks["wm"] & masks["csf"])
    )

    np.testing.assert_array_equal(union, masks["brain"])
    assert not overlaps.any()
    assert masks["wm"].sum() > 0.2 * masks["brain"].sum()
    assert masks["csf"].sum() > 0.02 * masks["brain"].sum()


def test_scalp_is_a_thin_fat_shell_outside_the_brain() -> None:
    from scipy import ndimage

    template = load_template(2, scalp=True)
    fat = template.fractions["fat"]
    distance = ndimage.distance_transform_edt(template.brain < 0.5, sampling=2.0)

    assert fat.any()
    assert not fat[template.brain > 0.5].any()
    inside_shell = (distance > SCALP_INNER_MM + 1) & (distance < SCALP_OUTER_MM - 1)
    assert float(fat[inside_shell].min()) == 1.0
    assert not fat[distance > SCALP_OUTER_MM + 2].any()


def test_displacement_is_a_few_mm_and_warp_moves_anatomy() -> None:
    template = load_template(2)

    displacement, rms_mm = sample_displacement(template, np.random.default_rng(0))
    warped = warp(template, displacement)
    unchanged = warp(template, np.zeros_like(displacement))

    magnitude = np.sqrt((displacement**2).sum(axis=0))
    assert 1.0 <= rms_mm <= 2.5
    assert float(np.sqrt((magnitude**2).mean())) == pytest.approx(rms_mm, rel=1e-3)
    assert float(magnitude.max()) < 12.0
    np.testing.assert_allclose(unchanged.brain, template.brain, atol=1e-6)
    changed = (warped.brain > 0.5) != (template.brain > 0.5)
    assert 0.005 < changed.mean() / (template.brain > 0.5).mean() < 0.2
