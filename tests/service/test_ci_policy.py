"""A test whose server or browser is absent skips locally but fails under CI=true."""

from __future__ import annotations

import pytest

from tests.service import conftest


def test_missing_dependency_skips_locally_and_fails_in_ci(monkeypatch):
    monkeypatch.setattr(conftest, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception, match="no Redis"):
        conftest.need(False, "no Redis on 127.0.0.1:6379")
    monkeypatch.setattr(conftest, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match="CI=true but no Redis"):
        conftest.need(False, "no Redis on 127.0.0.1:6379")
    conftest.need(True, "present")  # nothing happens when it is there
