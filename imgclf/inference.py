"""A trained model as a function from decoded images to class scores, whether it is a
checkpoint (`.pt`, run by PyTorch) or its ONNX export (`.onnx`, run by ONNX Runtime).

Both take what the pipeline's cache holds: uint8 (N, size, size, 3) RGB arrays, each image
decoded and resized as `prepare` does, at the size recorded with the model.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from imgclf.config import TrainParams
from imgclf.errors import UserError

INPUT, OUTPUT = "pixels", "logits"  # the ONNX graph's input and output

# params.yaml's train.cpu_threads and train.deterministic, for a checkpoint saved without them
DEFAULT_CPU_THREADS, DEFAULT_DETERMINISTIC = 2, True

# What load_checkpoint, trained_from and Loaded read
CHECKPOINT_KEYS = ("provenance", "model", "architecture", "classes")


class Scorer(Protocol):
    def logits(self, images: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Loaded:
    scorer: Scorer
    classes: list[str]
    image_size: int  # decode and resize every image to this, as prepare did


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities (float64) from logits, one row per image."""
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


class OnnxModel:
    """An ONNX classifier under ONNX Runtime on the CPU, with `threads` threads (train.cpu_threads
    in the pipeline), and its deterministic kernels when `deterministic`."""

    def __init__(self, model: bytes | Path, threads: int, deterministic: bool) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.use_deterministic_compute = deterministic
        source = model if isinstance(model, bytes) else str(model)
        self.session = onnxruntime.InferenceSession(
            source, options, providers=["CPUExecutionProvider"]
        )

    def logits(self, images: np.ndarray) -> np.ndarray:
        pixels = np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32)
        return self.session.run([OUTPUT], {INPUT: pixels})[0]


class TorchModel:
    """A checkpoint's model (the dict `checkpoint.load` returns), run as the evaluation and
    submission stages run it."""

    def __init__(self, saved: dict[str, Any]) -> None:
        import torch

        from imgclf.evaluate import trained_from
        from imgclf.runtime import pick_device, uses_bfloat16

        self.trained = trained_from(saved)
        self.device = pick_device("auto")
        self.model = self.trained.model.to(self.device, memory_format=torch.channels_last)
        self.bfloat16 = uses_bfloat16(self.device)

    def logits(self, images: np.ndarray) -> np.ndarray:
        import torch

        from imgclf.predict import predict_logits

        batch = torch.from_numpy(images)
        no_targets = torch.zeros(len(batch), dtype=torch.long)
        logits, _ = predict_logits(self.model, [(batch, no_targets)], self.device, self.bfloat16)
        return logits.numpy()


def card_path(onnx_file: Path) -> Path:
    """The model card beside an exported model: what it takes, its classes, where it is from."""
    return onnx_file.with_suffix(".json")


def load_model(path: Path, threads: int | None = None) -> Loaded:
    """A `.pt` checkpoint or an exported `.onnx` file (with its `.json` card beside it). The
    CPU arithmetic is pinned as the pipeline pinned it (train.deterministic), on `threads`
    threads (default: train.cpu_threads as it was when the model was trained or exported)."""
    if not path.is_file():
        raise UserError(
            f"{path}: no such model file; the pipeline writes models/<model>.pt and "
            "models/export/<model>.onnx (`make demo`, or `dvc repro export`)"
        )
    try:  # ONNX Runtime and torch.load would report it as a damaged model
        path.open("rb").close()
    except OSError as error:
        raise unreadable(path, error) from None
    if path.suffix == ".onnx":
        return load_export(path, threads)
    if path.suffix in (".pt", ".pth"):
        return load_checkpoint(path, threads)
    raise UserError(f"{path}: a model is a .pt checkpoint or an .onnx export")


def load_export(path: Path, threads: int | None) -> Loaded:
    from onnxruntime.capi.onnxruntime_pybind11_state import (
        Fail,
        InvalidArgument,
        InvalidGraph,
        InvalidProtobuf,
    )

    card = read_card(path)
    try:
        classes, image_size, runtime = card["classes"], card["image_size"], card["runtime"]
        threads = threads or runtime["cpu_threads"]
        deterministic = runtime["deterministic"]
    except (KeyError, TypeError):
        raise unusable_card(card_path(path)) from None
    try:
        scorer = OnnxModel(path, threads, deterministic)
    except (InvalidProtobuf, InvalidGraph, InvalidArgument, Fail):
        raise UserError(
            f"{path}: not a usable export of this pipeline; the export stage writes "
            "models/export/<model>.onnx and its card (`dvc repro export`)"
        ) from None
    return Loaded(scorer, classes, image_size)


def load_checkpoint(path: Path, threads: int | None) -> Loaded:
    from imgclf import checkpoint
    from imgclf.runtime import pin_cpu_arithmetic

    try:
        # Read before the model is built: the arithmetic is pinned before it computes anything.
        saved = checkpoint.load(path)
        if missing := [key for key in CHECKPOINT_KEYS if key not in saved]:
            raise unusable_checkpoint(path, f" (it has no {' or '.join(map(repr, missing))})")
        trained_with = saved["provenance"]["params"]
        image_size = trained_with["image_size"]
        cpu = cpu_arithmetic(trained_with.get("train", {}), threads)
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError, KeyError, TypeError):
        raise unusable_checkpoint(path) from None
    pin_cpu_arithmetic(cpu)
    try:
        model = TorchModel(saved)
    except (TypeError, ValueError, RuntimeError) as error:  # from building it, or its weights
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise unusable_checkpoint(path, f" ({reason})") from None
    return Loaded(model, model.trained.meta["classes"], image_size)


def cpu_arithmetic(train: dict[str, Any], threads: int | None) -> TrainParams:
    """The CPU settings in a checkpoint's saved train section, `threads` overriding its
    cpu_threads: the two fields pin_cpu_arithmetic reads, and only those, since a checkpoint
    saved before a training parameter was added lacks it."""
    return TrainParams.model_construct(
        cpu_threads=threads or train.get("cpu_threads", DEFAULT_CPU_THREADS),
        deterministic=train.get("deterministic", DEFAULT_DETERMINISTIC),
    )


def read_card(onnx_file: Path) -> dict[str, Any]:
    card = card_path(onnx_file)
    try:
        return json.loads(card.read_text())
    except FileNotFoundError:
        raise UserError(
            f"{card} not found: an .onnx model is used with the model card the export stage "
            "writes beside it (classes, input size)"
        ) from None
    except OSError as error:
        raise unreadable(card, error) from None
    except ValueError:  # not JSON, or not text
        raise unusable_card(card) from None


def unusable_card(card: Path) -> UserError:
    return UserError(
        f"{card}: not a usable model card of this pipeline; the export stage writes it beside "
        "models/export/<model>.onnx (`dvc repro export`)"
    )


def unusable_checkpoint(path: Path, detail: str = "") -> UserError:
    return UserError(
        f"{path}: not a usable checkpoint of this pipeline{detail}; its training stages write "
        "models/<model>.pt (`make demo`, or `dvc repro`)"
    )


def unreadable(path: Path, error: OSError) -> UserError:
    return UserError(f"{path}: cannot be read ({error.strerror or error})")
