import numpy as np
import pytest

from simulations.phantoms.tissues import LITERATURE, TISSUES, TissueJitter, tissue_parameters


@pytest.mark.parametrize("field", [1.5, 3.0])
def test_literature_values_follow_brain_physiology(field: float) -> None:
    table = LITERATURE[field]

    assert table["wm"].t1_ms < table["gm"].t1_ms < table["csf"].t1_ms
    assert table["wm"].t2_ms < table["gm"].t2_ms < table["csf"].t2_ms
    assert table["wm"].pd < table["gm"].pd < table["csf"].pd
    assert table["fat"].t1_ms < table["wm"].t1_ms


def test_t1_of_brain_tissue_lengthens_with_field() -> None:
    for tissue in ("wm", "gm"):
        assert LITERATURE[3.0][tissue].t1_ms > LITERATURE[1.5][tissue].t1_ms


def test_jitter_is_a_few_percent_and_reproducible() -> None:
    jitter = TissueJitter.sample(np.random.default_rng(3))
    again = TissueJitter.sample(np.random.default_rng(3))

    params = tissue_parameters(3.0, jitter)

    assert jitter == again
    factors = np.array([jitter.factors[t] for t in TISSUES])
    assert np.all(np.abs(np.log(factors)) <= 3 * 0.03 + 1e-9)
    assert np.any(factors != 1.0)
    wm = LITERATURE[3.0]["wm"]
    assert params["wm"].t1_ms == pytest.approx(wm.t1_ms * jitter.factors["wm"][0])
    assert params["wm"].pd == pytest.approx(wm.pd * jitter.factors["wm"][2])


def test_unknown_field_strength_is_refused() -> None:
    with pytest.raises(ValueError, match="7"):
        tissue_parameters(7.0)
