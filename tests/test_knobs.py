from __future__ import annotations

import math

import numpy as np
import pytest

from ddsp_gym.knobs import KnobSpec, to_physical, to_unit


def test_linear_and_log_mapping_and_round_trip():
    lin = KnobSpec("gain", -48.0, 6.0, "linear", "dB")
    log = KnobSpec("cutoff", 100.0, 10_000.0, "log", "Hz")
    assert float(lin.to_physical(0.5)) == pytest.approx(-21.0)
    assert float(log.to_physical(0.5)) == pytest.approx(1000.0, rel=1e-5)  # geometric mean
    assert float(log.to_physical(0.0)) == pytest.approx(100.0, rel=1e-6)
    assert float(log.to_physical(1.0)) == pytest.approx(10_000.0, rel=1e-5)
    u = np.linspace(0, 1, 11, dtype=np.float32)
    for spec in (lin, log):
        np.testing.assert_allclose(spec.to_unit(spec.to_physical(u)), u, atol=1e-5)


def test_out_of_range_values_are_clipped():
    spec = KnobSpec("f", 10.0, 1000.0, "log")
    assert float(spec.to_physical(2.0)) == pytest.approx(1000.0, rel=1e-5)
    assert float(spec.to_unit(-5.0)) == 0.0
    assert float(spec.to_unit(1e9)) == 1.0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(low=1.0, high=1.0), "must exceed"),
        (dict(low=0.0, high=1.0, curve="log"), "log curve needs low > 0"),
        (dict(low=0.0, high=1.0, curve="cubic"), "curve must be"),
    ],
)
def test_invalid_specs_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        KnobSpec("k", **kwargs)


def test_dict_helpers_name_missing_and_unknown_knobs():
    specs = (KnobSpec("a", 0.0, 1.0), KnobSpec("b", 1.0, 100.0, "log"))
    values = to_physical(specs, np.array([0.25, 0.5], np.float32))
    assert float(values["a"]) == pytest.approx(0.25)
    assert float(values["b"]) == pytest.approx(math.sqrt(100.0), rel=1e-5)
    with pytest.raises(ValueError, match=r"missing \['b'\], unknown \['c'\]"):
        to_unit(specs, {"a": 0.1, "c": 2.0})
