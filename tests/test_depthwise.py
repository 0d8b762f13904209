"""Depthwise convolutions compute in float32 under CPU autocast, the others in bf16."""

from __future__ import annotations

import copy

import torch
from efficientnet_lite_pytorch import EfficientNet
from torch import nn

from imgclf.models import build_model
from imgclf.models.depthwise import depthwise_in_float32_on_cpu, is_depthwise


def output_dtypes(net: nn.Module, pixels: torch.Tensor) -> dict[str, set[torch.dtype]]:
    """The dtypes of the depthwise and of the other convolutions' outputs in one forward pass
    under CPU bf16 autocast."""
    seen: dict[str, set[torch.dtype]] = {"depthwise": set(), "other": set()}

    def record(module: nn.Conv2d, _inputs: object, output: torch.Tensor) -> None:
        seen["depthwise" if is_depthwise(module) else "other"].add(output.dtype)

    hooks = [m.register_forward_hook(record) for m in net.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        net(pixels)
    for hook in hooks:
        hook.remove()
    return seen


def test_under_cpu_autocast_lite0s_depthwise_convolutions_compute_in_float32() -> None:
    model = build_model("transfer", "efficientnet_lite0", num_classes=3, image_size=64).eval()
    pixels = torch.rand(2, 3, 64, 64) * 255

    dtypes = output_dtypes(model, pixels)

    assert dtypes == {"depthwise": {torch.float32}, "other": {torch.bfloat16}}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model(pixels).dtype == torch.bfloat16


def test_without_autocast_the_network_and_its_parameter_names_are_as_the_library_made_them():
    torch.manual_seed(0)
    plain = EfficientNet.from_name("efficientnet-lite0", num_classes=3, image_size=64).eval()
    changed = copy.deepcopy(plain)

    assert depthwise_in_float32_on_cpu(changed) == 16
    assert depthwise_in_float32_on_cpu(changed) == 0  # once is enough
    assert list(changed.state_dict()) == list(plain.state_dict())
    pixels = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(changed(pixels), plain(pixels))


def test_a_copy_computes_with_its_own_weights() -> None:
    # The moving average of the weights is a deep copy of the model.
    model = build_model("transfer", "efficientnet_lite0", num_classes=3, image_size=64).eval()
    average = copy.deepcopy(model)
    pixels = torch.rand(2, 3, 64, 64) * 255
    with torch.no_grad():
        for parameter in average.parameters():
            parameter.zero_()
        assert not torch.equal(model(pixels), average(pixels))


def test_grouped_and_ordinary_convolutions_stay_as_they_are() -> None:
    net = nn.Sequential(nn.Conv2d(4, 8, 3, groups=2), nn.Conv2d(8, 8, 1))
    assert depthwise_in_float32_on_cpu(net) == 0
    assert [type(m) for m in net] == [nn.Conv2d, nn.Conv2d]
