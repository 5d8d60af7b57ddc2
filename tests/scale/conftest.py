"""A real local Ray (``num_cpus=2``) for the scale tests, started once per session and stopped after.

Ray is optional (``pip install 'fortify[ray]'``, which ``.ci/run`` installs): without it the tests
that need it skip with that reason, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def ray_or_skip() -> Any:
    """The ``ray`` module; a skip (a failure under ``CI=true``) when it is not installed."""
    try:
        import ray
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("Ray is not installed, and CI must run the scale tests: pip install 'fortify[ray]'")
        pytest.skip("Ray is not installed (pip install 'fortify[ray]'; CI installs it)")
    return ray


@pytest.fixture(scope="session")
def local_ray() -> Iterator[Any]:
    """A local Ray with 2 CPUs whose workers can import this repository's test helpers."""
    ray = ray_or_skip()
    if not ray.is_initialized():
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            logging_level=logging.WARNING,
            log_to_driver=False,
            runtime_env={"env_vars": {"PYTHONPATH": path, "OMP_NUM_THREADS": "1"}},
        )
    yield ray
    ray.shutdown()
