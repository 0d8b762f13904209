"""The training recipe's ingredients beyond the original's, each a parameter that can be off:
parameter groups (no weight decay on norms and biases, layer-wise learning-rate decay), mixup
and cutmix, and an exponential moving average of the weights. Layer-wise decay, mixup, cutmix
and the average come from timm, the library whose training script most practitioners know,
imported only when one is on: timm, with the torchvision it imports, made a one-epoch stage on
two cores 0.5 s (scratch) and 1.7 s (transfer) slower. The optimizers come from PyTorch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from imgclf.config import Params, TransferParams
from imgclf.models import Classifier
from imgclf.paths import ModelName

if TYPE_CHECKING:
    from timm.data import Mixup
    from timm.utils import ModelEmaV3


def param_groups(model: Classifier, params: Params, name: ModelName) -> list[dict[str, Any]]:
    """The optimizer's groups, each with its peak learning rate: the new head at train.lr x
    lr_mult, the backbone at transfer.backbone_lr_mult of that, each group of its layers at
    transfer.layer_decay of the one above it; weight decay the model's own, else
    train.weight_decay, and none on norms and biases unless train.decay_norm_and_bias. A frozen
    backbone (transfer.freeze_backbone) is left out."""
    options = params.model(name)
    transfer = options if isinstance(options, TransferParams) else None
    lr = params.peak_lr(name)
    decay = params.train.weight_decay if options.weight_decay is None else options.weight_decay
    exclude_1d = not params.train.decay_norm_and_bias
    if transfer and transfer.layer_decay != 1:
        from timm.optim import param_groups_layer_decay

        groups = param_groups_layer_decay(
            model, decay, weight_decay_exclude_1d=exclude_1d, layer_decay=transfer.layer_decay
        )
    else:
        groups = weight_decay_groups(model, decay, exclude_1d)
    head = {id(p) for p in model.head_parameters()}
    kept = []
    for group in groups:
        for in_head in (True, False):
            members = [p for p in group["params"] if (id(p) in head) == in_head]
            if not members or (not in_head and transfer and transfer.freeze_backbone):
                continue
            scale = transfer.backbone_lr_mult if transfer and not in_head else 1.0
            kept.append(
                {
                    "params": members,
                    "weight_decay": group["weight_decay"],
                    "lr": lr * scale * group.get("lr_scale", 1.0),
                }
            )
    return kept


def weight_decay_groups(
    model: torch.nn.Module, decay: float, exclude_1d: bool
) -> list[dict[str, Any]]:
    """The trainable parameters without weight decay (norms' weights and biases when
    `exclude_1d`, every one when `decay` is 0), then those with it: the groups, in the same
    order, of timm's param_groups_weight_decay, written out to leave timm unimported."""
    exempt: list[torch.nn.Parameter] = []
    decayed: list[torch.nn.Parameter] = []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        one_dimensional = parameter.ndim <= 1 or name.endswith(".bias")
        (exempt if not decay or (exclude_1d and one_dimensional) else decayed).append(parameter)
    groups = [{"params": exempt, "weight_decay": 0.0}, {"params": decayed, "weight_decay": decay}]
    return [group for group in groups if group["params"]]


def make_optimizer(model: Classifier, params: Params, name: ModelName) -> torch.optim.Optimizer:
    """AdamW, or SGD with Nesterov momentum (the model's `optimizer`, else train.optimizer),
    over param_groups. With SGD the groups' weight decay is L2, added to the gradient."""
    groups = param_groups(model, params, name)
    # Fused: one kernel for the whole step, and on the CPU a square root of torch's own, not
    # MKL's vector math, which torch.sqrt would call (imgclf/runtime.py says why not).
    if (params.model(name).optimizer or params.train.optimizer) == "sgd":
        return torch.optim.SGD(groups, momentum=0.9, nesterov=True, fused=True)
    return torch.optim.AdamW(groups, fused=True)


def make_mixup(params: Params, num_classes: int) -> Mixup | None:
    """Mixup and cutmix of whole batches, or None when both are off. The targets become
    probabilities, with train.label_smoothing folded in."""
    train = params.train
    if not (train.mixup or train.cutmix):
        return None
    from timm.data import Mixup

    return Mixup(
        mixup_alpha=train.mixup,
        cutmix_alpha=train.cutmix,
        label_smoothing=train.label_smoothing,
        num_classes=num_classes,
    )


def make_ema(model: torch.nn.Module, params: Params) -> ModelEmaV3 | None:
    """An exponential moving average of the weights (and batch-norm statistics), or None.
    With train.ema_warmup its decay grows as 1 - (1 + step)^(-2/3) up to train.ema_decay, so
    a short run is not dominated by the initial weights (0.998 is reached after 11,000 steps);
    the update is on the device and never waits for the host."""
    if not params.train.ema_decay:
        return None
    from timm.utils import ModelEmaV3

    return ModelEmaV3(model, decay=params.train.ema_decay, use_warmup=params.train.ema_warmup)
