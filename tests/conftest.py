"""Shared test configuration.

* Hypothesis runs the small ``ci`` profile by default (few examples, no deadline);
  set ``HYPOTHESIS_PROFILE=dev`` for a thorough local run.
* Shared reference data is found through ``JAXRANK_TEST_DATA`` (default
  ``../shared/data`` beside the repository). Tests that need it use the
  ``shared_data`` fixture, which skips with a reason when the folder is absent --
  except under ``JAXRANK_REQUIRE_TEST_DATA=1`` (set by ``.ci/run``), where a missing
  folder is an error, so CI never skips them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("dev", max_examples=200, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

REPO = Path(__file__).resolve().parent.parent


def _data_dir() -> Path:
    return Path(os.environ.get("JAXRANK_TEST_DATA", REPO.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = _data_dir()
    if not path.is_dir():
        if os.environ.get("JAXRANK_REQUIRE_TEST_DATA") == "1":
            pytest.fail(f"shared test data missing at {path} (JAXRANK_REQUIRE_TEST_DATA=1)")
        pytest.skip(f"shared test data not found at {path}; set JAXRANK_TEST_DATA")
    return path
