"""export: a trained Classifier as an ONNX file whose bytes depend only on the model (no
paths, no times), its check against PyTorch, and the model card that says what it takes."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import torch

from imgclf.cache import ImageCache
from imgclf.config import TrainParams
from imgclf.evaluate import Trained, predict
from imgclf.inference import INPUT, OUTPUT, OnnxModel, softmax
from imgclf.models import Classifier, Ensemble

OPSET = 20  # fixed, so that a new torch default cannot change the file unasked
MOST_DECIMALS = 9  # a difference of exactly 0 is reported as agreeing to this many


def onnx_bytes(model: Classifier | Ensemble, image_size: int) -> bytes:
    """The model as ONNX: float pixels 0-255, (N, 3, image_size, image_size), any N, to logits.
    The normalisation (and the resize to the model's input size, where that differs) is part
    of the graph, as it is part of the Classifier."""
    model = model.cpu().eval()
    example = torch.zeros(2, 3, image_size, image_size)
    program = torch.onnx.export(
        model,
        (example,),
        input_names=[INPUT],
        output_names=[OUTPUT],
        dynamic_shapes={"pixels": {0: torch.export.Dim("batch")}},  # forward()'s argument
        opset_version=OPSET,
        dynamo=True,
        verbose=False,
    )
    proto = program.model_proto
    _strip_provenance(proto.graph)
    return proto.SerializeToString(deterministic=True)


def _strip_provenance(graph: onnx.GraphProto) -> None:
    """The exporter annotates each node with the Python stack that made it (absolute paths of
    this checkout): the same model would give other bytes in another folder."""
    del graph.metadata_props[:]
    graph.doc_string = ""
    for node in graph.node:
        node.doc_string = ""
        del node.metadata_props[:]
    for value in [*graph.input, *graph.output, *graph.value_info, *graph.initializer]:
        del value.metadata_props[:]


@dataclass(frozen=True)
class Verification:
    disagreements: int  # images on which the two predict different classes
    max_prob_diff: float  # the largest absolute difference of a class probability
    predicted: np.ndarray  # the exported model's classes
    onnx_images_per_s: float


def verify(
    exported: bytes,
    trained: Trained,
    cache: ImageCache,
    indices: np.ndarray,
    batch_size: int,
    train: TrainParams,
) -> Verification:
    """Run the exported model under ONNX Runtime (train.cpu_threads threads) and the checkpoint
    under PyTorch, both in float32 on the CPU, over the cache rows `indices`, and compare."""
    logits = predict(trained, cache, indices, batch_size, tta_flip=False, float32_on_cpu=True)
    reference = softmax(logits.numpy())
    session = OnnxModel(exported, train.cpu_threads, train.deterministic)
    started = time.perf_counter()
    batches = [
        softmax(session.logits(cache.read(indices[start : start + batch_size])))
        for start in range(0, len(indices), batch_size)
    ]
    seconds = time.perf_counter() - started
    probabilities = np.concatenate(batches)
    return Verification(
        disagreements=int(np.sum(reference.argmax(1) != probabilities.argmax(1))),
        max_prob_diff=float(np.abs(reference - probabilities).max()),
        predicted=probabilities.argmax(1),
        onnx_images_per_s=round(len(indices) / seconds, 1),
    )


def agreed_decimals(difference: float) -> int:
    """The most decimals N with `difference` < 10^-N: a figure that stays the same on machines
    whose arithmetic differs in the last bits, where the difference itself does not. A whole
    number, which `dvc metrics show` prints as it is (it rounds 1e-06 to 0.0)."""
    if difference <= 0:
        return MOST_DECIMALS
    return max(0, min(MOST_DECIMALS, -math.floor(math.log10(difference)) - 1))


def model_card(
    name: str, trained: Trained, image_size: int, test_acc: float, train: TrainParams
) -> dict[str, Any]:
    """What a user of the ONNX file needs (what goes in, what comes out, the classes) and where
    it is from; nothing that differs between machines or commits of the same code. An
    ensemble describes each of its members."""
    model, meta = trained.model, trained.meta
    classes = meta["classes"]
    if isinstance(model, Ensemble):
        members = {
            key: _described(each, meta["members"][key]) for key, each in model.members.items()
        }
        described = {
            "arch": "ensemble: the weighted mean of its members' probabilities",
            "weights": dict(zip(model.members, model.weights, strict=True)),
            "members": members,
            "code_sha256": meta["provenance"]["code_sha256"],
        }
    else:
        described = _described(model, meta)
    return {
        "model": name,
        **described,
        "classes": classes,
        "input": {
            "name": INPUT,
            "shape": ["batch", 3, image_size, image_size],
            "dtype": "float32",
            "layout": "NCHW, RGB",
            "values": "0 to 255: the uint8 pixel values as floats, not normalised",
        },
        "image_size": image_size,
        "preprocessing": (
            "each image decoded as imgclf.images.decode_image does: JPEGs shrunk while they "
            "decode (Pillow's draft mode), the EXIF orientation applied, any colour mode to "
            "RGB (16 bits scaled to 8, transparency over white), then resized to image_size x "
            "image_size with Pillow's bilinear filter (reducing_gap 3.0)"
        ),
        "output": {
            "name": OUTPUT,
            "shape": ["batch", len(classes)],
            "meaning": "logits: a softmax over the classes gives the probabilities",
        },
        "test_acc": test_acc,
        "runtime": {"cpu_threads": train.cpu_threads, "deterministic": train.deterministic},
        "opset": OPSET,
    }


def _described(model: Classifier, meta: dict[str, Any]) -> dict[str, Any]:
    """One trained model's architecture, input size and normalisation, and its code."""
    return {
        "arch": meta["architecture"]["arch"],
        "model_input_size": model.input_size,
        "normalisation": {
            "in_graph": True,
            "mean": [round(v, 6) for v in model.mean.flatten().tolist()],
            "std": [round(v, 6) for v in model.std.flatten().tolist()],
            "formula": "(pixels - mean) / std, on the 0-255 scale, after a bilinear "
            "antialiased resize to model_input_size where that differs from image_size",
        },
        "code_sha256": meta["provenance"]["code_sha256"],
    }
