"""robtest's hooks for users' conftest.py files and plugins (pytest-benchmark's ``pytest_benchmark_update_machine_info``
is the model).

``pytest_robtest_run_metadata(config, metadata)``: add to (or change) the run's metadata before robtest writes it
into the JSON report, the HTML report, the baseline and the saved run of ``--robust-history``; for example the
model's release tag, the training run's id or the GPU's name::

    def pytest_robtest_run_metadata(config, metadata):
        metadata["model_release"] = os.environ.get("MODEL_TAG", "dev")

Keys robtest writes itself may be overwritten; values must be JSON (str, numbers, lists, dicts).
"""

from __future__ import annotations

from typing import Any

import pytest


def pytest_robtest_run_metadata(config: pytest.Config, metadata: dict[str, Any]) -> None:
    """Add run metadata (a user's release tag, a machine's name) to robtest's reports; change ``metadata`` in
    place."""
