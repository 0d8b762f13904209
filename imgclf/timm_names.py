"""transfer.arch timm/<name>: the checks `validate` makes, and where timm's weights live.

Importing this module is cheap: timm (and torch with it, about 2.5 s on two cores) is imported
only when a timm architecture is asked for, so reading params.yaml never pays for it.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from imgclf.config import TIMM_PREFIX, TransferParams
from imgclf.errors import UserError


def timm_name(arch: str) -> str | None:
    """The timm model name of `timm/<name>`, or None for the other architectures."""
    return arch.removeprefix(TIMM_PREFIX) if arch.startswith(TIMM_PREFIX) else None


def check_timm_backbone(transfer: TransferParams) -> None:
    """An unknown timm model, a pretrained tag timm does not have, a model without pretrained
    weights, or a transfer.weights file that is not there stops here, before any training."""
    name = timm_name(transfer.arch)
    if name is None:
        return
    if transfer.weights is not None and not Path(transfer.weights).is_file():
        raise UserError(
            f"transfer.weights: {transfer.weights} is not a file; name a weights file (a state "
            "dict or checkpoint saved by torch, or .safetensors), or leave it empty"
        )
    import timm
    from timm.models import get_pretrained_cfg, split_model_name_tag

    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=3)
        hint = f" (did you mean {', '.join(TIMM_PREFIX + c for c in close)}?)" if close else ""
        raise UserError(
            f"transfer.arch: timm {timm.__version__} has no model {name!r}{hint}; "
            f"python -c \"import timm; print(timm.list_models('*{name[:4]}*'))\" lists some"
        )
    try:
        location = weights_location(get_pretrained_cfg(name))
    except RuntimeError:  # a tag (name.tag) that this model's weights do not have
        model, tag = split_model_name_tag(name)
        tags = [known.partition(".")[2] for known in timm.list_pretrained(f"{model}.*")]
        raise UserError(
            f"transfer.arch: timm model {model} has no pretrained weights tagged {tag!r}; "
            f"its tags: {', '.join(tags) or 'none'}"
        ) from None
    if transfer.pretrained and transfer.weights is None and location is None:
        raise UserError(
            f"transfer.arch: timm has no pretrained weights for {name}: set "
            "transfer.pretrained: false, or transfer.weights to a file of weights"
        )


def weights_location(cfg: object) -> tuple[str, str] | None:
    """Where timm loads a pretrained configuration's weights from, and how to put them there
    by hand; None when it has none."""
    hub_id = getattr(cfg, "hf_hub_id", None)
    if hub_id:
        from huggingface_hub import constants

        folder = Path(constants.HF_HUB_CACHE) / f"models--{hub_id.replace('/', '--')}"
        return (
            f"the Hugging Face cache ({folder})",
            f"on a machine with network, `hf download {hub_id}` (huggingface-cli download with "
            "older versions) fills that folder, which can then be copied here",
        )
    url = getattr(cfg, "url", None)
    if url:
        return (
            "torch's cache ($TORCH_HOME/hub/checkpoints, by default "
            "~/.cache/torch/hub/checkpoints)",
            f"download {url} and place it there",
        )
    return None


def missing_weights_message(name: str, location: tuple[str, str], error: Exception) -> str:
    """One line: which model's weights are missing, where they go, and how to put them there."""
    where, how = location
    return (
        f"the pretrained weights of timm model {name} are not in {where} and could not be "
        f"downloaded ({type(error).__name__}): {how}; or set transfer.weights to a local "
        "weights file, or transfer.pretrained: false"
    )
