"""Depthwise convolutions in float32 when the CPU computes in bf16.

oneDNN's bf16 kernels for the backward pass of a depthwise convolution are several times
slower than its float32 ones (on a Xeon with AMX, at ISA avx512_core_bf16: 130 against 13 ms
for the gradient of the input of one of Lite0's layers, 95 against 20 ms for its weights),
while its bf16 forward pass and its other convolutions are fast. So under CPU autocast each
depthwise convolution computes in float32 and the rest in bf16: on that Xeon Lite0's
training steps ran 1.4x as fast as in bf16 throughout, and 1.3x as fast as in float32
(1.13x and about as fast with oneDNN held to avx512_core_bf16, without AMX:
bench/results/depthwise-float32-2026-12-05.md). On a GPU, and without autocast, nothing
changes.
"""

from __future__ import annotations

import functools

import torch
from torch import nn


class Float32OnCpuAutocast:
    """Mixed into a convolution's class: its forward in float32 under CPU autocast."""

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if inputs.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            with torch.autocast("cpu", enabled=False):
                return super().forward(inputs.float())  # type: ignore[misc]
        return super().forward(inputs)  # type: ignore[misc]


@functools.cache
def float32_variant(conv_class: type[nn.Conv2d]) -> type[nn.Conv2d]:
    """`conv_class` with Float32OnCpuAutocast's forward: one class per convolution class
    (nn.Conv2d, a library's 'same'-padded one...), so its instances keep their own forward's
    padding and their parameters' names."""
    return type(f"Float32{conv_class.__name__}", (Float32OnCpuAutocast, conv_class), {})


def is_depthwise(module: nn.Module) -> bool:
    """A convolution with one filter group per input channel."""
    return (
        isinstance(module, nn.Conv2d) and module.groups > 1 and module.groups == module.in_channels
    )


def depthwise_in_float32_on_cpu(net: nn.Module) -> int:
    """Make each depthwise convolution of `net` compute in float32 under CPU autocast; the
    number of them. The weights, their names and the results without autocast stay as they
    were."""
    changed = 0
    for module in net.modules():
        if is_depthwise(module) and not isinstance(module, Float32OnCpuAutocast):
            module.__class__ = float32_variant(type(module))
            changed += 1
    return changed
