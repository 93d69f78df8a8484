import pytest
from digits_model import load


@pytest.fixture(scope="session")
def robust_model():
    return load()  # $MODEL_VERSION, default the released v1; robust_data: robtest's default, the digits test split
