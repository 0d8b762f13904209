"""A network that takes raw pixel values (0 to 255) and normalises them the way it expects."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from imgclf.models.depthwise import depthwise_in_float32_on_cpu


class Classifier(nn.Module):
    def __init__(
        self,
        net: nn.Module,
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
        input_size: int,
        head_prefix: str | Sequence[str] = "",
    ) -> None:
        """`mean` and `std` are on the 0-255 scale; images of another size than `input_size`
        are resized first; `head_prefix` names the new output layer (or layers)."""
        super().__init__()
        depthwise_in_float32_on_cpu(net)
        self.net = net
        self.input_size = input_size
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))
        names = [head_prefix] if isinstance(head_prefix, str) else head_prefix
        self.head_prefixes = tuple(f"net.{name}." for name in names if name)
        if self.head_prefixes:  # where timm's layer-wise learning-rate decay finds the head
            self.pretrained_cfg = {"classifier": tuple(p.rstrip(".") for p in self.head_prefixes)}
        self.frozen_share = 0.0
        self._frozen_layers: frozenset[str] = frozenset()

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.net((resize_square(pixels, self.input_size) - self.mean) / self.std)

    def head_parameters(self) -> Iterator[nn.Parameter]:
        return (p for name, p in self.named_parameters() if self._in_head(name))

    def backbone_parameters(self) -> Iterator[nn.Parameter]:
        return (p for name, p in self.named_parameters() if not self._in_head(name))

    def freeze_backbone(self, share: float = 1.0) -> None:
        """Keep the first `share` of the backbone's layers (its modules with weights, counted
        from the input) as they are, batch-norm statistics included; train the rest. 1 trains
        the head alone, 0 everything. Autograd skips the backward pass of a frozen prefix."""
        layers = [
            (name, module)
            for name, module in self.named_modules()
            if not self._in_head(f"{name}.") and list(module.parameters(recurse=False))
        ]
        frozen = {name for name, _ in layers[: round(share * len(layers))]}
        for name, module in layers:
            for parameter in module.parameters(recurse=False):
                parameter.requires_grad_(name not in frozen)
        self.frozen_share = share
        self._frozen_layers = frozenset(frozen)
        self.train(self.training)

    def train(self, mode: bool = True) -> Classifier:
        super().train(mode)
        if mode:
            for name, module in self.named_modules():
                if name in self._frozen_layers and isinstance(
                    module, nn.modules.batchnorm._BatchNorm
                ):
                    module.eval()
        return self

    def _in_head(self, name: str) -> bool:
        return name.startswith(self.head_prefixes)


def resize_square(pixels: torch.Tensor, size: int) -> torch.Tensor:
    """A batch (N, C, H, W) resized to `size` x `size` the way every model sees its input at
    evaluation (bilinear, antialiased when shrinking); the batch itself when it has that size."""
    if pixels.shape[-2:] == (size, size):
        return pixels
    return F.interpolate(pixels, size=(size, size), mode="bilinear", antialias=True)
