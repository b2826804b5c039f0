"""The mask helpers of :mod:`wattroute.model.arrays` agree with ``ndarray.any``/``all``."""

from __future__ import annotations

import numpy as np
import pytest

from wattroute.model.arrays import all_set, any_set


@pytest.mark.parametrize(
    "mask",
    [
        np.zeros(0, dtype=bool),
        np.zeros(10, dtype=bool),
        np.ones(10, dtype=bool),
        np.array([False, True, False]),
        np.array([[False, False], [True, True]]),
        np.array([0.0, 0.0]),
        np.array([0.0, np.nan]),
        np.array([-1, 0, 2]),
    ],
)
def test_any_set_and_all_set_match_numpy(mask: np.ndarray) -> None:
    assert any_set(mask) is bool(mask.any())
    assert all_set(mask) is bool(mask.all())
