"""Models that return structured outputs, and timm's preprocessing (robtest/adapters.py), with real
``transformers`` and ``timm`` models built from configs with random weights (no download)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robtest.adapters import Logits, adapt_outputs, logits_of, timm_normalized
from robtest.errors import InvalidArgument, ModelOutputError
from robtest.evaluate import evaluate_accuracy


class _Returns(nn.Module):
    def __init__(self, wrap) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
        self.wrap = wrap

    def forward(self, x):
        return self.wrap(self.net(x))


@pytest.mark.parametrize(("wrap", "key"), [
    (lambda z: {"logits": z, "aux": None}, "logits"),
    (lambda z: (z, z.sum()), 0),
    (lambda z: {"scores": z}, "scores"),
], ids=["dict", "tuple-index", "other-key"])
def test_logits_reads_the_named_field_and_changes_no_number(wrap, key):
    from robtest.data import digits_tensors

    torch.manual_seed(0)
    plain = _Returns(lambda z: z)
    wrapped = _Returns(wrap)
    wrapped.load_state_dict(plain.state_dict())
    data = digits_tensors("test")
    a = evaluate_accuracy(plain, data, attack="pgd", eps=0.1, steps=3, samples=64, device="cpu", checks=False)
    b = evaluate_accuracy(Logits(wrapped, key), data, attack="pgd", eps=0.1, steps=3, samples=64, device="cpu",
                          checks=False)
    assert a.details["outcomes"] == b.details["outcomes"]


def test_an_unnamed_structured_output_gets_a_message_naming_the_fix():
    with pytest.raises(ModelOutputError, match=r"robtest.Logits\(model, key=...\)"):
        logits_of({"scores": torch.ones(1, 2)})
    with pytest.raises(ModelOutputError, match=r"expected a tensor at key 'logit' .* holds \['logits'\]"):
        logits_of({"logits": torch.ones(1, 2)}, "logit")
    model = _Returns(lambda z: {"scores": z})
    assert adapt_outputs(model, torch.rand(2, 1, 8, 8)) == (model, "")  # ambiguous: left to the output check


def test_a_hugging_face_classifier_is_evaluated_through_its_logits_field():
    transformers = pytest.importorskip("transformers")
    from robtest.data import digits_tensors

    torch.manual_seed(0)
    cfg = transformers.ViTConfig(image_size=8, patch_size=4, num_channels=1, hidden_size=16, num_hidden_layers=1,
                                 num_attention_heads=2, intermediate_size=32, num_labels=10)
    vit = transformers.ViTForImageClassification(cfg).eval()
    data = digits_tensors("test")
    m = evaluate_accuracy(vit, data, attack="fgsm", eps=0.05, samples=64, device="cpu", checks=False)
    assert "logits from the output's 'logits' field" in m.context
    explicit = evaluate_accuracy(Logits(vit, "logits"), data, attack="fgsm", eps=0.05, samples=64, device="cpu",
                                 checks=False)
    assert m.details["outcomes"] == explicit.details["outcomes"]
    assert isinstance(vit(torch.rand(1, 1, 8, 8)), transformers.modeling_outputs.ImageClassifierOutput)


def test_timm_normalized_takes_the_models_own_config():
    timm = pytest.importorskip("timm")

    net = timm.create_model("resnet18", pretrained=False, num_classes=10)
    wrapped, size = timm_normalized(net)
    assert size == (3, 224, 224)
    assert wrapped.mean.flatten().tolist() == pytest.approx(list(net.pretrained_cfg["mean"]))
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        expect = net((x - wrapped.mean) / wrapped.std)
        assert torch.allclose(wrapped(x), expect)
    grey = timm.create_model("resnet18", pretrained=False, num_classes=10, in_chans=1)
    with pytest.raises(InvalidArgument, match="mean and std have 3 channels but the model takes 1"):
        timm_normalized(grey)
    one, size = timm_normalized(grey, mean=(0.5,), std=(0.25,))
    assert size == (1, 224, 224) and one.std.flatten().tolist() == [0.25]
    with pytest.raises(InvalidArgument, match="expected a timm model"):
        timm_normalized(nn.Linear(2, 2))
