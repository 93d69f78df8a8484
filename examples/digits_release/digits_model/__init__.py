"""The model this repo releases: a small MLP on 8×8 digits in [0, 1], one weight file per release."""

from __future__ import annotations

import os
from pathlib import Path

from torch import nn

WEIGHTS = Path(__file__).resolve().parent.parent / "weights"


def build_model() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))


def load(version: str | None = None) -> nn.Module:
    """The released model ``version`` ("v1", "v2"; default $MODEL_VERSION, else the released v1)."""
    from safetensors.torch import load_file

    version = version or os.environ.get("MODEL_VERSION", "v1")
    model = build_model()
    model.load_state_dict(load_file(WEIGHTS / f"{version}.safetensors"))
    return model.eval()
