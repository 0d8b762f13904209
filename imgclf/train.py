"""train_scratch / train_transfer: fit a model, keep the epoch with the lowest validation loss.

Each epoch ends with a resumable checkpoint. Every random draw of an epoch (shuffling,
augmentation, dropout) comes from generators seeded with (seed, epoch, rank) when the epoch
starts, so a run resumed after a crash continues exactly as an unbroken run would have.
Under torchrun each process trains on its own shard; only rank 0 writes files.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
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
from imgclf.models.transfer import native_input_size
from imgclf.paths import ModelName
from imgclf.plots import learning_curves_figure, save_figure
from imgclf.predict import autocast, loss_and_accuracy, to_model_input
from imgclf.runtime import (
    barrier,
    configure,
    derive_seed,
    describe_runtime,
    is_main_process,
    launch_torchrun,
    peak_rss_mb,
    pin_cpu_arithmetic,
    process_group,
    rank,
    seed_everything,
    started_by_torchrun,
    world_size,
)
from imgclf.samples import SplitData, load_split_data
from imgclf.wording import counted

HISTORY_FIELDS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr"]


@dataclass
class Progress:
    """Where training stands after `epoch` complete epochs; saved in the resume checkpoint."""

    epoch: int = 0
    best_epoch: int = 0
    best_val_loss: float = math.inf
    stale_epochs: int = 0
    history: list[dict[str, float]] = field(default_factory=list)

    def record(self, row: dict[str, float]) -> bool:
        """Add an epoch's results; return whether its validation loss is the best so far."""
        self.history.append(row)
        self.epoch = int(row["epoch"])
        if row["val_loss"] < self.best_val_loss:
            self.best_val_loss, self.best_epoch, self.stale_epochs = row["val_loss"], self.epoch, 0
            return True
        self.stale_epochs += 1
        return False


@dataclass
class Run:
    """One training run: what it trains, on what, and how."""

    name: ModelName
    params: Params
    data: SplitData
    device: torch.device
    model: Classifier
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    train_loader: DataLoader
    val_loader: DataLoader
    epochs: int
    frozen_epochs: int
    identity: str  # fingerprint of parameters, data and code: which checkpoint may be resumed
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)


def stage_params(name: ModelName, params: Params) -> dict[str, Any]:
    """The parameters a training stage reads (its `params` in dvc.yaml)."""
    return {
        "seed": params.seed,
        "image_size": params.data.image_size,
        "train": params.train.model_dump(),
        "augment": params.augment.model_dump(),
        name: params.model(name).model_dump(),
    }


def run_training_stage(name: ModelName, params: Params) -> None:
    """Train model `name`: here, or in train.nproc processes under torchrun."""
    pin_cpu_arithmetic(params.train)  # first: torchrun's processes inherit the settings
    if params.train.nproc > 1 and not started_by_torchrun():
        launch_torchrun(f"stages.train_{name}", params.train.nproc)
        return
    with process_group(params.train) as device:
        train(name, params, device)


def train(name: ModelName, params: Params, device: torch.device) -> dict[str, Any]:
    """Train model `name` on the prepared data; write its checkpoint, history and metrics."""
    configure(params.train, device)
    seed_everything(params.seed)
    run = prepare_run(name, params, load_split_data(paths.MANIFEST, paths.SPLIT), device)
    progress = resume(run)
    started = time.perf_counter()
    train_seconds, images_seen = 0.0, 0
    net = None
    patience = params.train.patience
    while progress.epoch < run.epochs and progress.stale_epochs < patience:
        epoch = progress.epoch + 1
        frozen = epoch <= run.frozen_epochs
        if net is None or frozen != run.model.backbone_frozen:
            run.model.freeze_backbone(frozen)
            net = wrap(run.model, params, device)
        epoch_started = time.perf_counter()
        train_loss, train_acc = train_one_epoch(run, net, epoch)
        train_seconds += time.perf_counter() - epoch_started
        images_seen += len(run.train_loader.dataset)
        val_loss, val_acc = loss_and_accuracy(run.model, run.val_loader, device)
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "val_loss": val_loss,
            "val_acc": val_acc,
            "lr": run.optimizer.param_groups[0]["lr"],
        }
        improved = progress.record(row)
        if improved:
            run.best_state = copy.deepcopy(run.model.state_dict())
        if is_main_process():
            print(
                f"{name} epoch {epoch}/{run.epochs}: train loss {train_loss:.4f} acc"
                f" {train_acc:.4f} | val loss {val_loss:.4f} acc {val_acc:.4f}"
                + (" (best)" if improved else "")
                + (" [backbone frozen]" if frozen else ""),
                flush=True,
            )
            write_history(name, progress)
            save_resumable(run, progress)
    if progress.stale_epochs >= patience and is_main_process():
        print(f"{name}: stopped early, no better validation loss in {counted(patience, 'epoch')}")

    kept = progress.history[progress.best_epoch - 1]
    metrics = {
        "kept_epoch": progress.best_epoch,
        "epochs_trained": progress.epoch,
        **{key: round(kept[key], 6) for key in ("train_loss", "train_acc", "val_loss", "val_acc")},
    }
    timing = {
        "train_s": round(time.perf_counter() - started, 2),
        "images_per_s": round(images_seen / train_seconds, 1) if train_seconds else None,
        "peak_rss_mb": peak_rss_mb(),
    }
    if is_main_process():
        write_outputs(run, progress, metrics, timing)
        paths.resume_checkpoint(name).unlink(missing_ok=True)
    return metrics


def write_outputs(
    run: Run, progress: Progress, metrics: dict[str, Any], timing: dict[str, Any]
) -> None:
    """The kept checkpoint, the history and its picture, the metrics (quality figures, which
    `dvc metrics diff` compares), the provenance (in git, no metric) and the timing (not in
    git: it differs at every run); then one line that says what was kept and where."""
    name, stage = run.name, f"train_{run.name}"
    weights = save_best(run, progress)
    write_history(name, progress)
    # Under the model's name, so `dvc exp show` names the columns scratch.val_acc, ...
    write_json(paths.train_metrics(name), {name: metrics})
    origin = checkpoint.provenance(stage_params(name, run.params), run.data.fingerprint)
    del origin["params"]  # params.yaml is beside it in git
    record = {
        "weights_sha256": checkpoint.weights_digest(weights),
        "kept_epoch": progress.best_epoch,
        "lr": run.params.train.lr * run.params.model(name).lr_mult,
        "runtime": describe_runtime(run.device),
        **origin,
    }
    write_json(paths.provenance(stage), {name: record})
    write_json(paths.timing(stage), {name: timing})
    figure = paths.PLOTS / f"learning_curves_{name}.png"
    save_figure(
        learning_curves_figure(
            progress.history,
            progress.best_epoch,
            curves_title(name, run.params),
            len(run.data.classes),
        ),
        figure,
    )
    print(
        f"{stage}: kept epoch {progress.best_epoch} of {progress.epoch} (val loss "
        f"{metrics['val_loss']:.4f}, val acc {metrics['val_acc']:.4f}); wrote "
        f"{paths.checkpoint(name)}, {paths.train_metrics(name)}, {figure}",
        flush=True,
    )


def curves_title(name: ModelName, params: Params) -> str:
    """Which model, its architecture and the peak learning rate it trained with (and its
    backbone's, where that differs)."""
    options = params.model(name)
    lr = params.train.lr * options.lr_mult
    title = f"{name} ({options.arch}), lr {lr:g}"
    transfer = isinstance(options, TransferParams) and not options.freeze_backbone
    if transfer and options.backbone_lr_mult != 1:
        title += f", backbone lr {lr * options.backbone_lr_mult:g}"
    return title


def prepare_run(name: ModelName, params: Params, data: SplitData, device: torch.device) -> Run:
    """The model, its optimizer and schedule, and the loaders of this process's shard."""
    options = params.model(name)
    transfer = options if isinstance(options, TransferParams) else None
    lr = params.train.lr * options.lr_mult
    model = build_model(
        **model_spec(name, params, len(data.classes)),
        pretrained=bool(transfer and transfer.pretrained),
        weights=transfer.weights if transfer else None,
    )
    model.to(device, memory_format=torch.channels_last)  # faster convolutions, CPU and GPU
    groups = [{"params": list(model.head_parameters()), "lr": lr}]
    if not (transfer and transfer.freeze_backbone):
        scale = transfer.backbone_lr_mult if transfer else 1.0
        groups.append({"params": list(model.backbone_parameters()), "lr": lr * scale})
    optimizer = torch.optim.AdamW(
        [group for group in groups if group["params"]], weight_decay=params.train.weight_decay
    )

    cache = ImageCache(paths.CACHE)
    per_process_batch = params.train.batch_size // world_size()
    loader_options = {
        "seed": params.seed,
        "rank": rank(),
        "world_size": world_size(),
        "num_workers": params.train.num_workers,
        "pin_memory": device.type == "cuda",
    }
    train_set = CachedImages(cache, data.indices("train"), data.targets("train"))
    val_set = CachedImages(cache, data.indices("val"), data.targets("val"))
    train_loader = make_loader(train_set, per_process_batch, shuffle=True, **loader_options)
    val_loader = make_loader(val_set, per_process_batch, shuffle=False, **loader_options)

    epochs = options.epochs or params.train.epochs
    if transfer and transfer.freeze_backbone:
        frozen_epochs = epochs
    else:
        frozen_epochs = transfer.frozen_epochs if transfer else 0
    return Run(
        name=name,
        params=params,
        data=data,
        device=device,
        model=model,
        optimizer=optimizer,
        scheduler=make_scheduler(optimizer, params.train.schedule, epochs * len(train_loader)),
        train_loader=train_loader,
        val_loader=val_loader,
        epochs=epochs,
        frozen_epochs=frozen_epochs,
        identity=checkpoint.fingerprint(stage_params(name, params), data.fingerprint),
    )


def model_spec(name: ModelName, params: Params, num_classes: int) -> dict[str, Any]:
    """The arguments of build_model that rebuild this model; saved in its checkpoint."""
    options = params.model(name)
    return {
        "kind": name,
        "arch": options.arch,
        "num_classes": num_classes,
        "image_size": options.input_size
        or native_input_size(options.arch)
        or params.data.image_size,
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


def wrap(model: Classifier, params: Params, device: torch.device) -> nn.Module:
    """What the training loop calls: the model, data-parallel under torchrun, maybe compiled.
    Made anew when the backbone is frozen or thawed: DDP syncs what trained when it was made."""
    net: nn.Module = model
    if dist.is_initialized():
        net = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if params.train.compile:
        net = torch.compile(net)
    return net


def train_one_epoch(run: Run, net: nn.Module, epoch: int) -> tuple[float, float]:
    """One pass over the training data; the mean loss and accuracy over all processes."""
    seed_everything(derive_seed(run.params.seed, epoch, rank()))
    run.train_loader.sampler.set_epoch(epoch)
    augment_rng = torch.Generator().manual_seed(derive_seed(run.params.seed, epoch, rank(), 1))
    net.train()
    sums = torch.zeros(2, dtype=torch.float64, device=run.device)  # loss sum, correct
    count = 0
    batches = tqdm(
        run.train_loader,
        desc=f"{run.name} {epoch}/{run.epochs}",
        leave=False,
        disable=not is_main_process(),
    )
    for images, targets in batches:
        inputs = training_input(images, run.device, run.params.augment, augment_rng)
        targets = targets.to(run.device, non_blocking=True)
        loss, logits = train_step(run, net, inputs, targets)
        with torch.no_grad():
            sums[0] += loss.detach() * len(targets)
            sums[1] += (logits.argmax(1) == targets).sum()
        count += len(targets)
    totals = torch.cat([sums, torch.tensor([count], dtype=torch.float64, device=run.device)])
    if dist.is_initialized():
        dist.all_reduce(totals)
    loss_sum, correct, total = totals.tolist()
    return loss_sum / total, correct / total


def training_input(
    images: torch.Tensor, device: torch.device, augment: AugmentParams, generator: torch.Generator
) -> torch.Tensor:
    """A uint8 batch from the loader as the model trains on it: on the device, augmented,
    channels-last."""
    inputs = random_affine(to_model_input(images, device), augment, generator)
    return inputs.contiguous(memory_format=torch.channels_last)


def train_step(
    run: Run, net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimisation step on a batch already on the device; its loss and logits."""
    with autocast(run.device):
        logits = net(inputs)
        loss = F.cross_entropy(logits, targets, label_smoothing=run.params.train.label_smoothing)
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    run.optimizer.step()
    run.scheduler.step()
    return loss, logits


def write_history(name: ModelName, progress: Progress) -> None:
    rows = ([row[key] for key in HISTORY_FIELDS] for row in progress.history)
    write_csv(paths.history(name), HISTORY_FIELDS, rows)


def save_best(run: Run, progress: Progress) -> dict[str, torch.Tensor]:
    """Save the weights of the epoch with the lowest validation loss, for evaluate and
    submission; return them."""
    best = progress.history[progress.best_epoch - 1]
    checkpoint.save(
        paths.checkpoint(run.name),
        {
            "model": run.best_state,
            "architecture": model_spec(run.name, run.params, len(run.data.classes)),
            "classes": run.data.classes,
            "epoch": progress.best_epoch,
            "val_loss": best["val_loss"],
            "val_acc": best["val_acc"],
            "provenance": checkpoint.provenance(
                stage_params(run.name, run.params), run.data.fingerprint
            ),
        },
    )
    return run.best_state


def save_resumable(run: Run, progress: Progress) -> None:
    checkpoint.save(
        paths.resume_checkpoint(run.name),
        {
            "fingerprint": run.identity,
            "model": run.model.state_dict(),
            "best_model": run.best_state,
            "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(),
            "progress": asdict(progress),
        },
    )


def resume(run: Run) -> Progress:
    """Continue from the last complete epoch of an interrupted run of the same parameters,
    data and code; rank 0 sets a checkpoint of anything else aside, never resuming from it."""
    path = paths.resume_checkpoint(run.name)
    state = checkpoint.load(path) if path.exists() else None
    barrier()  # every process has read the file before rank 0 may move it
    if state is None:
        return Progress()
    if state.get("fingerprint") != run.identity:
        if is_main_process():
            aside = path.with_suffix(".stale.pt")
            path.replace(aside)
            print(f"{run.name}: {path} is from other parameters, data or code; moved to {aside}")
        return Progress()
    run.model.load_state_dict(state["model"])
    run.best_state = state["best_model"]
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    progress = Progress(**state["progress"])
    if is_main_process():
        print(f"{run.name}: resuming from epoch {progress.epoch}", flush=True)
    return progress
