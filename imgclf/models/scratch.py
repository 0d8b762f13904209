"""CNNs trained from scratch: the original notebook's network and a stronger residual default."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import Tensor, nn

from imgclf.models.classifier import Classifier

CENTRED = ((127.5,) * 3, (127.5,) * 3)  # pixels to [-1, 1]


def original_cnn(num_classes: int, image_size: int, dropout: float = 0.5) -> nn.Module:
    """The Keras notebook's network, layer for layer (Keras' 'same' padding, ReLU)."""
    flat = 64 * (image_size // 4) ** 2
    return nn.Sequential(
        nn.Conv2d(3, 32, 5, padding="same"),
        nn.ReLU(),
        nn.Conv2d(32, 32, 5, padding="same"),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding="same"),
        nn.ReLU(),
        nn.Conv2d(64, 64, 3, padding="same"),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(flat, 256),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(256, num_classes),
    )


def conv_bn(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class Residual(nn.Module):
    def __init__(self, channels: int, squeeze_excite: bool = False) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn(channels, channels), conv_bn(channels, channels))
        if squeeze_excite:  # the channel gate of SE-ResNets, on the branch before the sum
            from torchvision.ops import SqueezeExcitation  # seconds to import: only when used

            self.body.append(SqueezeExcitation(channels, channels // 4))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def resnet(
    num_classes: int,
    image_size: int,
    width: int,
    squeeze_excite: bool = False,
    dropout: float = 0.2,
) -> nn.Module:
    """A ResNet-9 in the style of the DAWNBench CIFAR-10 winners: batch norm, two residual
    stages, global pooling. Images of 64 px and more start with a stride-2 stem, so the
    cost stays that of a 32 to 64 px input where most of the work happens. `squeeze_excite`
    gates each residual branch's channels by the image's global content (Hu et al., 2018)."""
    stem_stride = 2 if image_size >= 64 else 1
    return nn.Sequential(
        conv_bn(3, width, stride=stem_stride),
        conv_bn(width, 2 * width),
        nn.MaxPool2d(2),
        Residual(2 * width, squeeze_excite),
        conv_bn(2 * width, 4 * width),
        nn.MaxPool2d(2),
        conv_bn(4 * width, 8 * width),
        nn.MaxPool2d(2),
        Residual(8 * width, squeeze_excite),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(8 * width, num_classes),
    )


# (num_classes, image_size, width, optionally dropout=...) -> the network
SCRATCH_ARCHS: dict[str, Callable[..., nn.Module]] = {
    "original": lambda num_classes, image_size, width, **dropout: original_cnn(
        num_classes, image_size, **dropout
    ),
    "resnet": resnet,
    "se_resnet": partial(resnet, squeeze_excite=True),
}


def build_scratch(
    arch: str, num_classes: int, image_size: int, width: int, dropout: float | None = None
) -> Classifier:
    """`width` is the channel count of the first layer (resnet; the original has its own);
    `dropout` the share dropped before the classifier (None: the architecture's own)."""
    own_or_given = {} if dropout is None else {"dropout": dropout}
    network = SCRATCH_ARCHS[arch](num_classes, image_size, width, **own_or_given)
    return Classifier(network, *CENTRED, image_size)
