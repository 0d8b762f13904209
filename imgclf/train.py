"""train_scratch / train_transfer: fit a model, keep its best epoch (train.select).

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
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from imgclf import checkpoint, paths
from imgclf.atomic import write_csv, write_json
from imgclf.augment import augment_batch
from imgclf.cache import ImageCache
from imgclf.config import AugmentParams, Params, ScratchParams, TransferParams
from imgclf.errors import UserError
from imgclf.loader import Batches, CachedImages, cache_bytes, make_batches, to_model_input
from imgclf.models import Classifier, build_model
from imgclf.models.transfer import native_input_size
from imgclf.paths import ModelName
from imgclf.plots import learning_curves_figure, save_figure
from imgclf.predict import loss_and_accuracy
from imgclf.progress import progress_bar
from imgclf.recipe import make_ema, make_mixup, make_optimizer
from imgclf.runtime import (
    autocast,
    barrier,
    configure,
    cpu_computes_bf16_natively,
    derive_seed,
    describe_runtime,
    fits_on_device,
    is_main_process,
    keep_freed_memory,
    launch_torchrun,
    peak_rss_mb,
    pin_cpu_arithmetic,
    process_group,
    rank,
    seed_everything,
    started_by_torchrun,
    uses_bfloat16,
    world_size,
)
from imgclf.samples import SplitData, load_split_data
from imgclf.wording import counted

if TYPE_CHECKING:
    from timm.data import Mixup
    from timm.utils import ModelEmaV3

HISTORY_FIELDS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr"]


@dataclass
class Progress:
    """Where training stands after `epoch` complete epochs; saved in the resume checkpoint.
    The epoch kept is the one with the best train.select: lowest val_loss or highest val_acc
    (the lower loss breaking a tie)."""

    select: str = "val_loss"
    epoch: int = 0
    best_epoch: int = 0
    best: tuple[float, float] = (math.inf, math.inf)  # lower is better
    stale_epochs: int = 0
    history: list[dict[str, float]] = field(default_factory=list)

    def record(self, row: dict[str, float]) -> bool:
        """Add an epoch's results; return whether it is the best so far."""
        self.history.append(row)
        self.epoch = int(row["epoch"])
        score = (
            (row["val_loss"], 0.0)
            if self.select == "val_loss"
            else (-row["val_acc"], row["val_loss"])
        )
        if score < tuple(self.best):
            self.best, self.best_epoch, self.stale_epochs = score, self.epoch, 0
            return True
        self.stale_epochs += 1
        return False


@dataclass(frozen=True)
class EpochPlan:
    """How many epochs a model trains, and how much of its backbone each leaves frozen."""

    epochs: int
    frozen_epochs: int  # the head trains alone for these first epochs
    frozen_share: float  # then the backbone's first layers stay frozen (transfer.frozen_share)

    def frozen_share_in(self, epoch: int) -> float:
        return 1.0 if epoch <= self.frozen_epochs else self.frozen_share


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
    train_batches: Batches
    val_batches: Batches
    plan: EpochPlan
    identity: str  # fingerprint of parameters, data and code: which checkpoint may be resumed
    mixup: Mixup | None  # mixes each training batch and turns its targets into probabilities
    ema: ModelEmaV3 | None  # the weights' moving average: validated and kept when there
    bfloat16: bool  # steps and validation in bf16 mixed precision (train.precision)
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def kept_model(self) -> Classifier:
        """The weights that are validated and kept: the moving average, or the model."""
        return self.ema.module if self.ema else self.model

    def resumable_state(self) -> dict[str, Any]:
        """What an interrupted run continues from, besides its Progress."""
        return {
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict() if self.ema else None,
            "best_model": self.best_state,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a resumable_state()."""
        self.model.load_state_dict(state["model"])
        if self.ema:
            self.ema.load_state_dict(state["ema"])
        self.best_state = state["best_model"]
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])


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
        launch_torchrun(f"stages.{paths.training_stage(name)}", params.train.nproc)
        return
    with process_group(params.train) as device:
        train(name, params, device)


def train(name: ModelName, params: Params, device: torch.device) -> dict[str, Any]:
    """Train model `name` on the prepared data; write its checkpoint, history and metrics."""
    keep_freed_memory()
    configure(params.train, device)
    seed_everything(params.seed)
    run = prepare_run(name, params, load_split_data(paths.MANIFEST, paths.SPLIT), device)
    if is_main_process() and (warning := emulated_bfloat16(run)):
        print(f"warning: {paths.training_stage(name)}: {warning}", flush=True)
    progress = resume(run) or Progress(select=params.train.select)
    resumed_after = progress.epoch or None  # the epochs an earlier, stopped run finished
    started = time.perf_counter()
    train_seconds, images_seen = 0.0, 0
    net: nn.Module | None = None
    patience = params.train.patience
    while progress.epoch < run.plan.epochs and progress.stale_epochs < patience:
        epoch = progress.epoch + 1
        frozen = epoch <= run.plan.frozen_epochs
        net = network_for_epoch(run, net, epoch)
        epoch_started = time.perf_counter()
        train_loss, train_acc = train_one_epoch(run, net, epoch)
        train_seconds += time.perf_counter() - epoch_started
        images_seen += run.train_batches.images
        val_loss, val_acc = validation_scores(run, epoch)
        stop_if_diverged(name, epoch, train_loss, val_loss)
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
            run.best_state = copy.deepcopy(run.kept_model.state_dict())
        if is_main_process():
            print(
                f"{name} epoch {epoch}/{run.plan.epochs}: train loss {train_loss:.4f} acc"
                f" {train_acc:.4f} | val loss {val_loss:.4f} acc {val_acc:.4f}"
                + (" (best)" if improved else "")
                + (" [backbone frozen]" if frozen else ""),
                flush=True,
            )
            write_history(name, progress)
            save_resumable(run, progress)
    if progress.stale_epochs >= patience and is_main_process():
        better = (
            "lower validation loss"
            if params.train.select == "val_loss"
            else "higher validation accuracy"
        )
        print(f"{name}: stopped early, no {better} in {counted(patience, 'epoch')}")

    kept = progress.history[progress.best_epoch - 1]
    metrics = {
        "kept_epoch": progress.best_epoch,
        "epochs_trained": progress.epoch,
        **{key: round(kept[key], 6) for key in ("train_loss", "train_acc", "val_loss", "val_acc")},
    }
    timing = {
        "resumed_after_epoch": resumed_after,  # train_s and images/s: the epochs after it
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
    name, stage = run.name, paths.training_stage(run.name)
    weights = save_best(run, progress)
    write_history(name, progress)
    # Under the model's name, so `dvc exp show` names the columns scratch.val_acc, ...
    write_json(paths.train_metrics(name), {name: metrics})
    origin = checkpoint.provenance(name, stage_params(name, run.params), run.data.fingerprint)
    del origin["params"]  # params.yaml is beside it in git
    record = {
        "weights_sha256": checkpoint.weights_digest(weights),
        "kept_epoch": progress.best_epoch,
        "lr": run.params.peak_lr(name),
        "optimizer": type(run.optimizer).__name__,
        "runtime": describe_runtime(run.device),
        "processes": world_size(),  # hosts x train.nproc: more trains other weights
        "precision": "bfloat16" if run.bfloat16 else "float32",
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
    if warning := no_better_than_guessing(run, metrics["val_acc"]):
        print(f"warning: {stage}: {warning}", flush=True)


def emulated_bfloat16(run: Run) -> str | None:
    """bf16 asked for by name on a CPU without AVX-512 BF16 or AMX is emulated, and far slower
    than float32 (`precision: auto` never picks it there): say so, naming the key that asked."""
    if not run.bfloat16 or run.device.type != "cpu" or cpu_computes_bf16_natively():
        return None
    key = f"{run.name}.precision" if run.params.model(run.name).precision else "train.precision"
    return (
        f"{key} is bfloat16, which this CPU can only emulate (it has neither AVX-512 BF16 nor "
        "AMX): on a Zen 3 AMD EPYC bf16 trained the scratch network 16 times slower than "
        f"float32; set {key} to auto or float32"
    )


GUESSING_SIGNIFICANCE = 0.05


def no_better_than_guessing(run: Run, val_acc: float) -> str | None:
    """A kept model whose validation accuracy is not clearly above answering the most common
    class every time (a one-sided binomial test) has learnt nothing: say so, where the numbers
    alone would not."""
    from scipy.stats import binomtest  # here: only this check needs it

    counts = np.bincount(run.data.targets("val"), minlength=len(run.data.classes))
    most, images = int(counts.argmax()), int(counts.sum())
    share = counts[most] / images
    p_value = binomtest(round(val_acc * images), images, share, alternative="greater").pvalue
    if p_value < GUESSING_SIGNIFICANCE:
        return None
    return (
        f"the kept model (val acc {val_acc:.4f}) does no better than answering "
        f"'{run.data.classes[most]}' every time ({share:.4f}; binomial test p = {p_value:.2g}): "
        f"the learning rate (train.lr {run.params.train.lr} times {run.name}.lr_mult "
        f"{run.params.model(run.name).lr_mult}) may be far too low or too high, or the epochs "
        "too few"
    )


def curves_title(name: ModelName, params: Params) -> str:
    """Which model, its architecture and the peak learning rate it trained with (and its
    backbone's, where that differs)."""
    options = params.model(name)
    lr = params.peak_lr(name)
    title = f"{name} ({options.arch}), lr {lr:g}"
    transfer = isinstance(options, TransferParams) and not options.freeze_backbone
    if transfer and options.backbone_lr_mult != 1:
        title += f", backbone lr {lr * options.backbone_lr_mult:g}"
    return title


def prepare_run(name: ModelName, params: Params, data: SplitData, device: torch.device) -> Run:
    """The model, its optimizer and schedule, and the loaders of this process's shard."""
    options = params.model(name)
    transfer = options if isinstance(options, TransferParams) else None
    model = build_model(
        **model_spec(name, params, len(data.classes)),
        pretrained=bool(transfer and transfer.pretrained),
        weights=transfer.weights if transfer else None,
    )
    model.to(device, memory_format=torch.channels_last)  # faster convolutions, CPU and GPU
    optimizer = make_optimizer(model, params, name)

    cache = ImageCache(paths.CACHE)
    train_set = CachedImages(cache, data.indices("train"), data.targets("train"))
    val_set = CachedImages(cache, data.indices("val"), data.targets("val"))
    wanted = params.train.data_on_device
    size = cache_bytes(cache, train_set.indices) + cache_bytes(cache, val_set.indices)
    batch_options = {
        "batch_size": params.train.batch_size // world_size(),  # process_group: it divides
        "seed": params.seed,
        "device": device,
        "on_device": wanted is True or (wanted == "auto" and fits_on_device(size, device)),
        "rank": rank(),
        "world_size": world_size(),
        "num_workers": params.train.num_workers,
    }
    train_batches = make_batches(train_set, shuffle=True, **batch_options)
    val_batches = make_batches(val_set, shuffle=False, **batch_options)

    plan = epoch_plan(name, params)
    return Run(
        name=name,
        params=params,
        data=data,
        device=device,
        model=model,
        optimizer=optimizer,
        scheduler=make_scheduler(
            optimizer, params.train.schedule, plan.epochs * len(train_batches)
        ),
        train_batches=train_batches,
        val_batches=val_batches,
        plan=plan,
        identity=checkpoint.fingerprint(name, stage_params(name, params), data.fingerprint),
        mixup=make_mixup(params, len(data.classes)),
        ema=make_ema(model, params),
        bfloat16=uses_bfloat16(
            device, options.precision or params.train.precision, params.train.deterministic
        ),
    )


def epoch_plan(name: ModelName, params: Params) -> EpochPlan:
    options = params.model(name)
    epochs = options.epochs or params.train.epochs
    if not isinstance(options, TransferParams):
        return EpochPlan(epochs, frozen_epochs=0, frozen_share=0.0)
    frozen_epochs = epochs if options.freeze_backbone else options.frozen_epochs
    return EpochPlan(epochs, frozen_epochs, options.frozen_share)


def model_spec(name: ModelName, params: Params, num_classes: int) -> dict[str, Any]:
    """The arguments of build_model that rebuild this model; saved in its checkpoint."""
    options = params.model(name)
    spec = {
        "kind": name,
        "arch": options.arch,
        "num_classes": num_classes,
        "image_size": options.input_size
        or native_input_size(options.arch)
        or params.data.image_size,
        "width": getattr(options, "width", 0),
    }
    if isinstance(options, ScratchParams) and options.dropout is not None:
        spec["dropout"] = options.dropout
    return spec


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


def network_for_epoch(run: Run, net: nn.Module | None, epoch: int) -> nn.Module:
    """`net`, or a new one when this epoch freezes or thaws a share of the backbone."""
    share = run.plan.frozen_share_in(epoch)
    if net is None or share != run.model.frozen_share:
        run.model.freeze_backbone(share)
        net = wrap(run.model, run.params, run.device)
    return net


def train_one_epoch(run: Run, net: nn.Module, epoch: int) -> tuple[float, float]:
    """One pass over the training data; the mean loss and accuracy over all processes. Sums
    stay on the device and are read back once, so no step waits for the host."""
    seed_everything(derive_seed(run.params.seed, epoch, rank()))
    augment_rng = torch.Generator(run.device)
    augment_rng.manual_seed(derive_seed(run.params.seed, epoch, rank(), 1))
    net.train()
    sums = torch.zeros(3, dtype=torch.float64, device=run.device)  # loss sum, correct, images
    batches = progress_bar(
        run.train_batches.epoch(epoch),
        total=len(run.train_batches),
        desc=f"{run.name} {epoch}/{run.plan.epochs}",
        leave=False,
        shown=is_main_process(),
    )
    first_step = (epoch - 1) * len(run.train_batches)
    for step, (images, targets) in enumerate(batches, start=first_step):
        inputs = training_input(images, run.params.augment, augment_rng, run.model.input_size)
        loss, logits = train_step(run, net, inputs, targets, step)
        with torch.no_grad():
            sums[0] += loss.detach() * len(targets)
            sums[1] += (logits.argmax(1) == targets).sum()
            sums[2] += len(targets)
    if dist.is_initialized():
        dist.all_reduce(sums)
    loss_sum, correct, total = sums.tolist()
    return loss_sum / total, correct / total


def validation_scores(run: Run, epoch: int) -> tuple[float, float]:
    """The kept weights' validation loss and accuracy, over every process's shard."""
    share_rank_zero_buffers(run)
    return loss_and_accuracy(run.kept_model, run.val_batches.epoch(epoch), run.device, run.bfloat16)


def share_rank_zero_buffers(run: Run) -> None:
    """Give every process rank 0's buffers (batch-norm statistics, and their moving average),
    the ones it saves: each process's last steps left it its own, and validation sums all
    the processes' shards."""
    if not dist.is_initialized():
        return
    for model in (run.model, run.ema.module) if run.ema else (run.model,):
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


def stop_if_diverged(name: ModelName, epoch: int, train_loss: float, val_loss: float) -> None:
    """Stop, before an epoch whose loss is not a number is recorded or kept: its weights are
    lost, and every later epoch's would be too."""
    losses = {"training": train_loss, "validation": val_loss}
    bad = [f"{kind} loss {loss}" for kind, loss in losses.items() if not math.isfinite(loss)]
    if bad:
        raise UserError(
            f"{paths.training_stage(name)}: training diverged in epoch {epoch} "
            f"({', '.join(bad)}): lower train.lr or {name}.lr_mult"
        )


def training_input(
    images: torch.Tensor, augment: AugmentParams, generator: torch.Generator, size: int
) -> torch.Tensor:
    """A uint8 batch on the device as the model trains on it: augmented at the model's input
    size (`augment_batch`), channels-last."""
    inputs = augment_batch(to_model_input(images), augment, generator, size)
    return inputs.contiguous(memory_format=torch.channels_last)


def train_step(
    run: Run, net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, step: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimisation step (the `step`-th of the run) on a batch already on the device;
    its loss and logits. Mixup and cutmix need an even batch: an odd last one is not mixed."""
    smoothing = run.params.train.label_smoothing
    if run.mixup and len(inputs) % 2 == 0:
        inputs, targets = run.mixup(inputs, targets)  # probabilities, smoothing included
        smoothing = 0.0
    with autocast(run.device, run.bfloat16):
        logits = net(inputs)
        loss = F.cross_entropy(logits, targets, label_smoothing=smoothing)
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    run.optimizer.step()
    run.scheduler.step()
    if run.ema:
        run.ema.update(run.model, step=step)
    return loss, logits


def write_history(name: ModelName, progress: Progress) -> None:
    rows = ([row[key] for key in HISTORY_FIELDS] for row in progress.history)
    write_csv(paths.history(name), HISTORY_FIELDS, rows)


def save_best(run: Run, progress: Progress) -> dict[str, torch.Tensor]:
    """Save the weights of the best epoch (train.select), for evaluate and submission; return
    them."""
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
                run.name, stage_params(run.name, run.params), run.data.fingerprint
            ),
        },
    )
    return run.best_state


def save_resumable(run: Run, progress: Progress) -> None:
    checkpoint.save(
        paths.resume_checkpoint(run.name),
        {"fingerprint": run.identity, **run.resumable_state(), "progress": asdict(progress)},
    )


def resume(run: Run) -> Progress | None:
    """Continue from the last complete epoch of an interrupted run of the same parameters,
    data and code; rank 0 sets a checkpoint of anything else aside, never resuming from it."""
    path = paths.resume_checkpoint(run.name)
    state = checkpoint.load(path) if path.exists() else None
    barrier()  # every process has read the file before rank 0 may move it
    if state is None:
        return None
    if state.get("fingerprint") != run.identity:
        if is_main_process():
            aside = path.with_suffix(".stale.pt")
            path.replace(aside)
            print(f"{run.name}: {path} is from other parameters, data or code; moved to {aside}")
        return None
    run.restore(state)
    progress = Progress(**state["progress"])
    if is_main_process():
        print(f"{run.name}: resuming from epoch {progress.epoch}", flush=True)
    return progress
