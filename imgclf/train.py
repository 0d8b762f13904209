"""train_scratch / train_transfer: fit a model, keep the epoch with the lowest validation loss.

Each epoch ends with a resumable checkpoint. Every random draw of an epoch (shuffling,
augmentation, dropout) comes from generators seeded with (seed, epoch, rank) when the epoch
starts, so a run resumed after a crash continues exactly as an unbroken run would have.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from imgclf import checkpoint, paths
from imgclf.atomic import write_csv, write_json
from imgclf.augment import random_affine
from imgclf.cache import ImageCache
from imgclf.config import AugmentParams, Params, TransferParams
from imgclf.loader import CachedImages, make_loader
from imgclf.models import Classifier, build_model
from imgclf.paths import ModelName
from imgclf.plots import learning_curves_figure, save_figure
from imgclf.predict import autocast, loss_and_accuracy, to_model_input
from imgclf.runtime import (
    configure,
    derive_seed,
    is_main_process,
    peak_rss_mb,
    pick_device,
    rank,
    seed_everything,
    world_size,
)
from imgclf.samples import load_split_data

HISTORY_FIELDS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr"]


@dataclass
class Progress:
    """Where training stands after `epoch` complete epochs: what early stopping needs."""

    epoch: int = 0
    best_epoch: int = 0
    best_val_loss: float = math.inf
    stale_epochs: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


def stage_params(name: ModelName, params: Params) -> dict[str, Any]:
    """The parameters a training stage reads (its `params` in dvc.yaml)."""
    return {
        "seed": params.seed,
        "image_size": params.data.image_size,
        "train": params.train.model_dump(),
        "augment": params.augment.model_dump(),
        name: params.model(name).model_dump(),
    }


def run_training_stage(name: ModelName, params: Params) -> dict[str, Any]:
    """Train model `name` on the prepared data; write its checkpoint, history and metrics."""
    data = load_split_data(paths.MANIFEST, paths.SPLIT)
    cache = ImageCache(paths.CACHE)
    device = pick_device(params.train.device)
    configure(params.train, device)
    seed_everything(params.seed)
    options = params.model(name)
    epochs = options.epochs or params.train.epochs
    architecture = model_spec(name, params, len(data.classes))
    model, optimizer = model_and_optimizer(name, params, architecture, device)

    train_set = CachedImages(cache, data.indices("train"), data.targets("train"))
    val_set = CachedImages(cache, data.indices("val"), data.targets("val"))
    loader_options = {
        "seed": params.seed,
        "rank": rank(),
        "world_size": world_size(),
        "num_workers": params.train.num_workers,
        "pin_memory": device.type == "cuda",
    }
    batch = params.train.batch_size
    train_loader = make_loader(train_set, batch, shuffle=True, **loader_options)
    val_loader = make_loader(val_set, batch, shuffle=False, **loader_options)
    scheduler = make_scheduler(optimizer, params.train.schedule, epochs * len(train_loader))

    net: nn.Module = model
    if params.train.compile:
        net = torch.compile(net)
    if dist.is_initialized():
        net = DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None
        )

    identity = checkpoint.fingerprint(stage_params(name, params), data.fingerprint)
    progress = resume(name, identity, model, optimizer, scheduler)
    started = time.perf_counter()
    train_seconds, images_seen = 0.0, 0
    patience = params.train.patience
    while progress.epoch < epochs and progress.stale_epochs < patience:
        epoch = progress.epoch + 1
        seed_everything(derive_seed(params.seed, epoch, rank()))
        train_loader.sampler.set_epoch(epoch)
        augment_rng = torch.Generator().manual_seed(derive_seed(params.seed, epoch, rank(), 1))
        epoch_started = time.perf_counter()
        train_loss, train_acc = train_one_epoch(
            net,
            train_loader,
            optimizer,
            scheduler,
            params.augment,
            augment_rng,
            params.train.label_smoothing,
            device,
            desc=f"{name} {epoch}/{epochs}",
        )
        train_seconds += time.perf_counter() - epoch_started
        images_seen += len(train_set)
        val_loss, val_acc = loss_and_accuracy(model, val_loader, device)
        record = {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "val_loss": val_loss,
            "val_acc": val_acc,
            "lr": optimizer.param_groups[0]["lr"],
        }
        progress.history.append(record)
        progress.epoch = epoch
        improved = val_loss < progress.best_val_loss
        if improved:
            progress.best_val_loss, progress.best_epoch, progress.stale_epochs = val_loss, epoch, 0
        else:
            progress.stale_epochs += 1
        if is_main_process():
            print(
                f"{name} epoch {epoch}/{epochs}: train loss {train_loss:.4f} acc {train_acc:.4f}"
                f" | val loss {val_loss:.4f} acc {val_acc:.4f}" + (" (best)" if improved else ""),
                flush=True,
            )
            if improved:
                save_best(name, model, architecture, data.classes, params, record, data.fingerprint)
            write_csv(
                paths.history(name),
                HISTORY_FIELDS,
                ([row[key] for key in HISTORY_FIELDS] for row in progress.history),
            )
            save_resumable(name, identity, model, optimizer, scheduler, progress)
    if progress.stale_epochs >= patience and is_main_process():
        print(f"{name}: stopped early, no better validation loss in {patience} epochs")
    elapsed = time.perf_counter() - started

    best = progress.history[progress.best_epoch - 1]
    metrics = {
        "best_epoch": progress.best_epoch,
        "epochs_trained": progress.epoch,
        "lr": params.train.lr * options.lr_mult,
        **{key: round(best[key], 6) for key in ("train_loss", "train_acc", "val_loss", "val_acc")},
        "timing": {
            "train_s": round(elapsed, 2),
            "images_per_s": round(images_seen / train_seconds, 1) if train_seconds else None,
            "peak_rss_mb": peak_rss_mb(),
        },
    }
    if is_main_process():
        # Under the model's name, so `dvc exp show` names the columns scratch.val_acc, ...
        write_json(paths.train_metrics(name), {name: metrics})
        save_figure(
            learning_curves_figure(
                progress.history, progress.best_epoch, f"{name} ({options.arch})"
            ),
            paths.PLOTS / f"learning_curves_{name}.png",
        )
        paths.resume_checkpoint(name).unlink(missing_ok=True)
    return metrics


def model_and_optimizer(
    name: ModelName, params: Params, architecture: dict[str, Any], device: torch.device
) -> tuple[Classifier, torch.optim.Optimizer]:
    """The new model on `device` and AdamW over what it trains: the head at train.lr x
    lr_mult, a transfer backbone at backbone_lr_mult of that, or not at all when frozen."""
    options = params.model(name)
    lr = params.train.lr * options.lr_mult
    transfer = options if isinstance(options, TransferParams) else None
    model = build_model(**architecture, pretrained=bool(transfer and transfer.pretrained))
    model.to(device, memory_format=torch.channels_last)  # faster convolutions, CPU and GPU
    groups = [{"params": list(model.head_parameters()), "lr": lr}]
    if transfer and transfer.freeze_backbone:
        model.freeze_backbone()
    else:
        scale = transfer.backbone_lr_mult if transfer else 1.0
        groups.append({"params": list(model.backbone_parameters()), "lr": lr * scale})
    groups = [group for group in groups if group["params"]]
    return model, torch.optim.AdamW(groups, weight_decay=params.train.weight_decay)


def model_spec(name: ModelName, params: Params, num_classes: int) -> dict[str, Any]:
    """The arguments of build_model that rebuild this model; saved in its checkpoint."""
    options = params.model(name)
    return {
        "kind": name,
        "arch": options.arch,
        "num_classes": num_classes,
        "image_size": params.data.image_size,
        "width": getattr(options, "width", 0),
    }


def make_scheduler(
    optimizer: torch.optim.Optimizer, schedule: str, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """Stepped once per batch. onecycle: warm up then anneal; cosine: anneal from the start."""
    if schedule == "onecycle":
        peaks = [group["lr"] for group in optimizer.param_groups]
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=peaks, total_steps=total_steps)
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)


def train_one_epoch(
    net: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    augment: AugmentParams,
    augment_rng: torch.Generator,
    label_smoothing: float,
    device: torch.device,
    desc: str,
) -> tuple[float, float]:
    """One pass over the training data; returns the mean loss and accuracy over all ranks."""
    net.train()
    totals = torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, correct, count
    for images, targets in tqdm(loader, desc=desc, leave=False, disable=not is_main_process()):
        inputs = random_affine(to_model_input(images, device), augment, augment_rng)
        inputs = inputs.contiguous(memory_format=torch.channels_last)
        targets = targets.to(device, non_blocking=True)
        with autocast(device):
            logits = net(inputs)
            loss = F.cross_entropy(logits, targets, label_smoothing=label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        with torch.no_grad():
            totals += torch.stack(
                [
                    loss.detach().double() * len(targets),
                    (logits.argmax(1) == targets).sum().double(),
                    torch.tensor(len(targets), dtype=torch.float64, device=device),
                ]
            )
    if dist.is_initialized():
        dist.all_reduce(totals)
    loss_sum, correct, count = totals.tolist()
    return loss_sum / count, correct / count


def save_best(
    name: ModelName,
    model: Classifier,
    architecture: dict[str, Any],
    classes: list[str],
    params: Params,
    record: dict[str, float],
    data_fingerprint: str,
) -> None:
    checkpoint.save(
        paths.checkpoint(name),
        {
            "model": model.state_dict(),
            "architecture": architecture,
            "classes": classes,
            "epoch": record["epoch"],
            "val_loss": record["val_loss"],
            "val_acc": record["val_acc"],
            "provenance": checkpoint.provenance(stage_params(name, params), data_fingerprint),
        },
    )


def save_resumable(
    name: ModelName,
    identity: str,
    model: Classifier,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    progress: Progress,
) -> None:
    checkpoint.save(
        paths.resume_checkpoint(name),
        {
            "fingerprint": identity,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "progress": asdict(progress),
        },
    )


def resume(
    name: ModelName,
    identity: str,
    model: Classifier,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> Progress:
    """Continue from the last complete epoch of an interrupted run of the same parameters and
    data; a checkpoint of anything else is set aside, never resumed from."""
    path: Path = paths.resume_checkpoint(name)
    if not path.exists():
        return Progress()
    state = checkpoint.load(path)
    if state.get("fingerprint") != identity:
        aside = path.with_suffix(".stale.pt")
        path.replace(aside)
        print(f"{name}: {path} is from other parameters or data; moved to {aside}, starting over")
        return Progress()
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    progress = Progress(**state["progress"])
    print(f"{name}: resuming from epoch {progress.epoch}", flush=True)
    return progress
