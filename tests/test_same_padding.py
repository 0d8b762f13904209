"""EfficientNet-Lite's symmetric 'same' padding is done by its convolutions, with the same
sums (to rounding) and the same weights."""

from __future__ import annotations

import copy

import pytest
import torch
from efficientnet_lite_pytorch import EfficientNet
from torch import nn

from imgclf.models import build_model
from imgclf.models.same_padding import pad_inside_convolutions


def padding_layers(net: nn.Module) -> list[tuple[int, int, int, int]]:
    """The paddings (left, right, top, bottom) still done before a convolution."""
    return [m.padding for m in net.modules() if isinstance(m, nn.ZeroPad2d)]


def symmetric(padding: tuple[int, int, int, int]) -> bool:
    left, right, top, bottom = padding
    return left == right and top == bottom


@pytest.mark.parametrize(("size", "moved"), [(150, 14), (97, 17)])
def test_the_library_network_computes_the_same_with_its_padding_moved(size, moved) -> None:
    torch.manual_seed(0)
    plain = EfficientNet.from_name("efficientnet-lite0", num_classes=3, image_size=size)
    changed = copy.deepcopy(plain)

    assert pad_inside_convolutions(changed) == moved
    assert pad_inside_convolutions(changed) == 0  # once is enough
    assert len(padding_layers(changed)) == len(padding_layers(plain)) - moved
    assert not any(symmetric(padding) for padding in padding_layers(changed))
    assert list(changed.state_dict()) == list(plain.state_dict())
    pixels = torch.randn(2, 3, size, size)
    with torch.no_grad():
        # The same sums; a convolution kernel of another CPU may add them in another order.
        torch.testing.assert_close(changed.eval()(pixels), plain.eval()(pixels))


def test_training_gradients_are_those_of_the_library_network() -> None:
    torch.manual_seed(0)
    plain = EfficientNet.from_name("efficientnet-lite0", num_classes=3, image_size=64).train()
    changed = copy.deepcopy(plain)
    pad_inside_convolutions(changed)
    pixels = torch.randn(4, 3, 64, 64)

    for net in (plain, changed):
        torch.manual_seed(1)  # the same dropout and dropped connections
        net(pixels).square().sum().backward()

    pairs = zip(plain.named_parameters(), changed.parameters(), strict=True)
    for (name, expected), actual in pairs:
        torch.testing.assert_close(actual.grad, expected.grad, msg=name)


def test_the_transfer_model_leaves_only_asymmetric_padding_outside_its_convolutions() -> None:
    model = build_model("transfer", "efficientnet_lite0", num_classes=3, image_size=150)
    layers = padding_layers(model)
    assert len(layers) == 3
    assert not any(symmetric(padding) for padding in layers)
