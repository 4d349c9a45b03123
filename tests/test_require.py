"""``tests.conftest.require``: optional dependencies skip locally and fail under CI."""

from __future__ import annotations

import pytest

from tests.conftest import require


@pytest.mark.parametrize("need", ["no_such_module_4d1b", False, None, 0])
def test_an_unmet_need_skips_with_its_reason_outside_ci(need, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="needs the thing"):
        require(need, "needs the thing")


@pytest.mark.parametrize("need", ["no_such_module_4d1b", False])
def test_an_unmet_need_fails_under_ci(need, monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI runs this test for real, but needs"):
        require(need, "needs the thing")


def test_a_missing_module_is_named_with_its_import_error(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no_such_module_4d1b does not import"):
        require("no_such_module_4d1b", "needs the thing")


@pytest.mark.parametrize("need", ["json", True, 1])
def test_a_met_need_returns_even_under_ci(need, monkeypatch):
    monkeypatch.setenv("CI", "1")
    assert require(need, "unused") is None
