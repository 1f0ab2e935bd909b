"""Stage ids, seeds and the joint likelihood of flowprior.pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from flowprior.errors import InputError
from flowprior.pipeline import ProductLikelihood, derive_seed, joint_id, parse_stage, stage_id


def test_stage_ids_round_trip_and_joint_ids_are_canonical():
    assert stage_id(["A", "B", "C"]) == "A__B__C"
    assert parse_stage("A__B__C") == ["A", "B", "C"]
    assert joint_id(["B", "A"], ["A", "B", "C"]) == "A__B"
    with pytest.raises(InputError, match="may not contain"):
        stage_id(["A__x", "B"])


def test_derived_seeds_are_stable_and_distinct():
    a = derive_seed(1, "sequential", "A__B", "pocomc")
    assert a == derive_seed(1, "sequential", "A__B", "pocomc")
    others = {derive_seed(1, "sequential", "A__B", "emcee"), derive_seed(2, "sequential", "A__B", "pocomc"),
              derive_seed(1, "stage1", "A")}
    assert a not in others and len(others) == 3
    assert 0 <= a < 2**32


def test_product_likelihood_sums_and_skips_dead_points():
    calls = []

    def first(x):
        return np.where(x[:, 0] > 0, -x[:, 0], -np.inf)

    def second(x):
        calls.append(len(x))
        return -2.0 * x[:, 1]

    x = np.array([[1.0, 1.0], [-1.0, 5.0], [2.0, 0.5]])
    out = ProductLikelihood([first, second])(x)
    np.testing.assert_allclose(out, [-3.0, -np.inf, -3.0])
    assert calls == [2]  # the second factor never sees the point the first one rejected
