"""Run a model over a loader: logits for evaluation, validation and the submission."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader


def to_model_input(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 (N, H, W, C) from the loader to float (N, C, H, W) on the device.

    The permuted view keeps the pixels in channels-last order, which convolutions prefer.
    """
    return images.to(device, non_blocking=True).permute(0, 3, 1, 2).float()


def autocast(device: torch.device) -> torch.autocast:
    """bf16 mixed precision on CUDA; plain float32 on the CPU."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


@torch.no_grad()
def predict_logits(
    model: nn.Module, loader: DataLoader, device: torch.device, tta_flip: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Float32 logits and targets for every batch of `loader`, in order, on the CPU.
    `tta_flip` averages the predictions of each image and its mirror image."""
    model.eval()
    all_logits, all_targets = [], []
    for images, targets in loader:
        inputs = to_model_input(images, device)
        with autocast(device):
            logits = model(inputs).float()
            if tta_flip:
                logits = (logits + model(inputs.flip(3)).float()) / 2
        all_logits.append(logits.cpu())
        all_targets.append(targets)
    if not all_logits:
        return torch.empty(0), torch.empty(0, dtype=torch.long)
    return torch.cat(all_logits), torch.cat(all_targets)


def loss_and_accuracy(
    model: nn.Module, loader: DataLoader, device: torch.device
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy, summed over every rank's shard when distributed."""
    logits, targets = predict_logits(model, loader, device)
    totals = torch.tensor(
        [
            F.cross_entropy(logits, targets, reduction="sum").item() if len(targets) else 0.0,
            (logits.argmax(1) == targets).sum().item() if len(targets) else 0.0,
            float(len(targets)),
        ],
        dtype=torch.float64,
        device=device,
    )
    if dist.is_initialized():
        dist.all_reduce(totals)
    loss_sum, correct, count = totals.tolist()
    return loss_sum / count, correct / count
