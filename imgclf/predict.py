"""Run a model over batches: logits for evaluation and the submission, loss and accuracy for
validation."""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from imgclf.loader import Batch, to_model_input
from imgclf.runtime import autocast


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    batches: Iterable[Batch],
    device: torch.device,
    bfloat16: bool,
    tta_flip: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Float32 logits and targets of every batch, in order, on the CPU, computed in bf16 mixed
    precision if `bfloat16`. `tta_flip` averages the predictions of each image and its mirror
    image."""
    model.eval()
    all_logits, all_targets = [], []
    for images, targets in batches:
        inputs = to_model_input(images.to(device, non_blocking=True))
        with autocast(device, bfloat16):
            logits = model(inputs).float()
            if tta_flip:
                logits = (logits + model(inputs.flip(3)).float()) / 2
        all_logits.append(logits)
        all_targets.append(targets)
    if not all_logits:
        return torch.empty(0), torch.empty(0, dtype=torch.long)
    return torch.cat(all_logits).cpu(), torch.cat(all_targets).cpu()


@torch.no_grad()
def loss_and_accuracy(
    model: nn.Module, batches: Iterable[Batch], device: torch.device, bfloat16: bool
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy, summed on the device (over every rank's shard when
    distributed) and read back once."""
    model.eval()
    sums = torch.zeros(3, dtype=torch.float64, device=device)  # loss, correct, images
    for images, targets in batches:
        with autocast(device, bfloat16):
            logits = model(to_model_input(images)).float()
        sums[0] += F.cross_entropy(logits, targets, reduction="sum")
        sums[1] += (logits.argmax(1) == targets).sum()
        sums[2] += len(targets)
    if dist.is_initialized():
        dist.all_reduce(sums)
    loss_sum, correct, count = sums.tolist()
    return loss_sum / count, correct / count
