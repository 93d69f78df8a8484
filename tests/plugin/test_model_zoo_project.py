"""A user's project with the models of the field: a Hugging Face ViT (returns an ``ImageClassifierOutput``) and
a timm ResNet (its preprocessing from its own config), built from configs (no download), run with ``pytest
--robust`` and markers. The ViT is trained on the embedded digits in seconds (random ViT weights predict one
class for every input); the ResNet keeps random weights and is judged on its own clean predictions. Every
property reads the ViT's logits out of its output by itself and says so in the summary; the clean floor holds and
a large-ε PGD floor of 0.99 fails."""

from __future__ import annotations

import json

import pytest

VIT = """
import pytest, torch
import robtest

@pytest.fixture(scope="session")
def robust_model():
    import transformers
    from robtest.data import digits_tensors
    from robtest.zoo import train_classifier

    torch.manual_seed(0)
    cfg = transformers.ViTConfig(image_size=8, patch_size=4, num_channels=1, hidden_size=32, num_hidden_layers=1,
                                 num_attention_heads=2, intermediate_size=64, num_labels=10)
    vit = transformers.ViTForImageClassification(cfg)   # returns ImageClassifierOutput, not a tensor
    x, y = digits_tensors("train")
    train_classifier(robtest.Logits(vit), x, y, epochs=15, lr=3e-3, seed=0)   # 0.95 clean, ~4 s
    return vit.eval()
"""

TIMM = """
import pytest, torch
import robtest

@pytest.fixture(scope="session")
def robust_model():
    import timm
    torch.manual_seed(0)
    net = timm.create_model("resnet18", pretrained=False, num_classes=10).eval()
    wrapped, size = robtest.timm_normalized(net)   # mean/std from net.pretrained_cfg; pixels in [0, 1]
    assert size == (3, 224, 224)
    return wrapped.eval()

@pytest.fixture(scope="session")
def robust_data(robust_model):
    x = torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return x, robust_model(x).argmax(1)
"""

TESTS = """
import pytest

@pytest.mark.accuracy_floor(attack=None, eps=0.0, floor=0.85)
def test_clean():
    pass

@pytest.mark.accuracy_floor(attack="pgd", eps=0.3, floor=0.99, steps=5)
def test_pgd_breaks_it():
    pass

@pytest.mark.lipschitz(max=1e6, samples=8)
def test_lipschitz():
    pass

@pytest.mark.offset_invariance(max_drop=1.0, grid=3)
def test_offset():
    pass
"""


@pytest.mark.parametrize("project", ["vit", "timm"])
def test_markers_pass_and_fail_as_expected(pytester: pytest.Pytester, project: str):
    pytest.importorskip("transformers" if project == "vit" else "timm")
    pytester.makeconftest(VIT if project == "vit" else TIMM)
    pytester.makepyfile(test_hub_models=TESTS)  # a basename no other test file has
    result = pytester.runpytest("--robust", "-p", "no:cacheprovider", "--robust-report=out.json",
                                "--robust-samples=96")
    result.assert_outcomes(passed=3, failed=1)
    recs = {r["id"].split("::")[1]: r for r in json.loads((pytester.path / "out.json").read_text())["records"]}
    assert recs["test_clean"]["measurement"]["value"] >= 0.85 and recs["test_pgd_breaks_it"]["verdict"] == "FAIL"
    read = [("'logits' field" in r["measurement"]["context"]) for r in recs.values()]
    assert all(read) if project == "vit" else not any(read)  # said where it was done, and only there
    assert "Traceback" not in result.stdout.str()
