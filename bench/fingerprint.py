"""Digests of what each kind of operation computes under the pinned CPU settings
(train.deterministic: true), to find which one gives other bits on another CPU: run it on
both machines and diff the outputs. Each line is one operation on fixed seeded inputs, in
the shapes the demo's models use: its output's digest, then each gradient's.

    python bench/fingerprint.py > bench/results/fingerprint/$(hostname).txt
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for `python bench/fingerprint.py`

import torch
import torch.nn.functional as F

from bench.machine import describe
from imgclf.config import load_params
from imgclf.models import build_model, mean_probability_logits
from imgclf.recipe import make_optimizer
from imgclf.runtime import describe_runtime, pin_cpu_arithmetic
from imgclf.train import training_input

BATCH = 64
LAST_BATCH = 45  # the demo trains on 1,069 images in batches of 64: the last holds 45
EVAL_BATCH = 256  # evaluate.batch_size until 2026-12-06 (64 since): the stored digests used it


def main() -> None:
    params = load_params()
    train = params.train.model_copy(update={"deterministic": True})
    pin_cpu_arithmetic(train)  # before the first tensor operation
    print(f"# {describe()}; caches {cache_sizes()}")
    print(f"# {describe_runtime(torch.device('cpu'))}")

    report("conv 3x3 16->32 at 32 px", conv(), (BATCH, 16, 32, 32), (32, 16, 3, 3))
    report("conv 3x3 3->16 at 32 px", conv(), (BATCH, 3, 32, 32), (16, 3, 3, 3))
    report("conv 1x1 32->96 at 16 px", conv(padding=0), (BATCH, 32, 16, 16), (96, 32, 1, 1))
    report("depthwise 3x3 96 at 16 px", conv(groups=96), (BATCH, 96, 16, 16), (96, 1, 3, 3))
    report("linear 1280->10", F.linear, (BATCH, 1280), (10, 1280))
    report(
        "batch norm 32 at 32 px",
        lambda x, w: F.batch_norm(x, None, None, w, None, training=True),
        (BATCH, 32, 32, 32),
        (32,),
    )
    report("interpolate 32->24 antialiased",
           lambda x: F.interpolate(x, size=(24, 24), mode="bilinear", antialias=True),
           (BATCH, 3, 32, 32))  # fmt: skip
    evaluated = []
    for name, arch, width in (("scratch", "resnet", 16), ("transfer", "efficientnet_lite0", 0)):
        torch.manual_seed(0)
        model = build_model(name, arch, 10, 32, width=width)
        pixels = (BATCH, 3, 32, 32)
        report(f"{name} forward and backward", lambda x, m=model: m(x * 64 + 128), pixels)
        layers = [
            f"{layer}={digest(p.grad)}"
            for layer, p in model.named_parameters()
            if p.grad is not None
        ]
        print(f"# {name} gradients, last layer first: " + " ".join(layers[::-1]))
        # the rest of a training step and of evaluation, in the demo's other batch sizes
        optimizer = make_optimizer(model, params, name)
        optimizer.step()
        weights = torch.cat([p.detach().flatten() for p in model.parameters()])
        step = f"{name} {type(optimizer).__name__} step (weights after)"
        print(f"{step:<34} out {digest(weights)}")
        last = (LAST_BATCH, 3, 32, 32)
        report(f"{name} fwd+bwd, batch {LAST_BATCH}", lambda x, m=model: m(x * 64 + 128), last)
        model.eval()
        with torch.no_grad():
            batch = torch.randn((EVAL_BATCH, 3, 32, 32), generator=torch.Generator().manual_seed(0))
            evaluated.append(model(batch * 64 + 128))
            label = f"{name} evaluation, batch {EVAL_BATCH}"
            print(f"{label:<34} out {digest(evaluated[-1])}")
    ensemble = mean_probability_logits(evaluated, (0.25, 0.75))
    print(f"{'ensemble of the two (1:3)':<34} out {digest(ensemble)}")
    report(
        "cross-entropy, label smoothing",
        lambda logits: F.cross_entropy(logits, torch.arange(BATCH) % 10, label_smoothing=0.1),
        (BATCH, 10),
    )

    uint8 = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (BATCH, 32, 32, 3), dtype=torch.uint8, generator=uint8)
    augmented = training_input(images, params.augment, torch.Generator().manual_seed(1), 32)
    print(f"{'augmentation (augment.*), 32 px':<34} out {digest(augmented)}")


def cache_sizes() -> str:
    """Each cache level's size as Linux reports it (oneDNN may size its blocking by them)."""
    caches = sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"))
    return " ".join(
        f"L{(c / 'level').read_text().strip()}{(c / 'type').read_text().strip()[0]}="
        f"{(c / 'size').read_text().strip()}"
        for c in caches
    )


def digest(tensor: torch.Tensor) -> str:
    return hashlib.sha256(tensor.detach().contiguous().numpy().tobytes()).hexdigest()[:12]


def report(name: str, compute: Callable[..., torch.Tensor], *shapes: tuple[int, ...]) -> None:
    """One line: the digest of `compute`'s output on seeded inputs of `shapes`, then of each
    input's gradient for a seeded output gradient."""
    generator = torch.Generator().manual_seed(0)
    inputs = [torch.randn(shape, generator=generator).requires_grad_() for shape in shapes]
    output = compute(*inputs)
    output.backward(torch.randn(output.shape, generator=generator))
    gradients = " ".join(digest(each.grad) for each in inputs)
    print(f"{name:<34} out {digest(output)}  grads {gradients}")


def conv(groups: int = 1, padding: int = 1) -> Callable[..., torch.Tensor]:
    """A 2-D convolution of a channels-last input, as the models run them."""

    def compute(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        return F.conv2d(x, w, padding=padding, groups=groups)

    return compute


if __name__ == "__main__":
    main()
