"""Property tests run tiny models: one torch thread is many times faster than several on a shared CPU."""

from __future__ import annotations

import pytest

from tests.helpers import one_torch_thread

_one_torch_thread = pytest.fixture(scope="package", autouse=True)(one_torch_thread)
