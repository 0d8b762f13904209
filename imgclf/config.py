"""params.yaml, loaded as YAML 1.2 (as DVC writes it) into typed, validated objects.

Every key is required and unknown keys are refused, so params.yaml is the one place a
hyperparameter lives and a typo such as `train.lrr` stops the stage before any work.
"""

from __future__ import annotations

import difflib
import itertools
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from imgclf.errors import UserError

PARAMS_FILE = Path("params.yaml")

# The model registries (imgclf.models) are keyed by these names; a test keeps them in step.
# They live here so that reading params.yaml does not import the models.
SCRATCH_ARCHS = ("original", "resnet", "se_resnet")
TRANSFER_ARCHS = (
    "efficientnet_lite0",
    "efficientnet_lite1",
    "efficientnet_lite2",
    "vgg16",
    "resnet18",
    "resnet50",
    "efficientnet_b0",
    "convnext_tiny",
    "mobilenet_v3_large",
)
TIMM_PREFIX = "timm/"  # transfer.arch timm/<name>: any timm model (checked by validate)
# Their downsampling leaves nothing of a smaller input (the others run from 8 px up).
SMALLEST_INPUT = {"vgg16": 32, "convnext_tiny": 32}

Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]
PositiveInt = Annotated[int, Field(gt=0)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_means_none(cls, values: Any) -> Any:
        """`dvc exp run -S transfer.precision=` writes an empty string; for a key that may be
        left empty (null in params.yaml) that is what it means."""
        if not isinstance(values, dict):
            return values
        return {
            key: None if value == "" and cls._may_be_empty(key) else value
            for key, value in values.items()
        }

    @classmethod
    def _may_be_empty(cls, key: str) -> bool:
        field = cls.model_fields.get(key)
        return field is not None and type(None) in get_args(field.annotation)


class DataParams(Section):
    root: str
    train_dir: str
    val_dir: str
    test_dir: str
    predict_dir: str
    image_size: Annotated[int, Field(ge=8, le=1024)]

    @model_validator(mode="after")
    def _folders_apart(self) -> DataParams:
        """Each split reads its own sub-folder of data.root: an empty name is data.root itself,
        and a folder inside another puts its images in both splits."""
        folders = {
            f"data.{key}": PurePosixPath(getattr(self, key))
            for key in ("train_dir", "val_dir", "test_dir", "predict_dir")
        }
        for key, folder in folders.items():
            if folder == PurePosixPath("."):
                raise ValueError(
                    f"{key} is empty, which is data.root itself: name its sub-folder of "
                    "data.root (one that does not exist is fine, except data.train_dir)"
                )
        for (key, folder), (other, other_folder) in itertools.permutations(folders.items(), 2):
            if folder == other_folder:
                clash = f"{key} and {other} are both {str(folder)!r}"
            elif folder.is_relative_to(other_folder):
                clash = f"{key} ({folder}) is inside {other} ({other_folder}), which would read it"
            else:
                continue
            raise ValueError(f"{clash}: give each split a folder of its own, not inside another")
        return self


class PrepareParams(Section):
    max_image_pixels: PositiveInt


class SplitParams(Section):
    val_fraction: Fraction
    test_fraction: Fraction
    max_train_per_class: PositiveInt | None
    keep_copies_together: bool

    @model_validator(mode="after")
    def _leave_some_training_data(self) -> SplitParams:
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ValueError("split.val_fraction + split.test_fraction must be below 1")
        return self


class CheckParams(Section):
    fail_on_leakage: bool
    near_duplicate_bits: Annotated[int, Field(ge=0, le=64)]
    near_duplicate_max_diff: Annotated[float, Field(ge=0.0, le=255.0)]


Precision = Literal["auto", "float32", "bfloat16"]
Optimizer = Literal["adamw", "sgd"]


class TrainParams(Section):
    lr: Annotated[float, Field(gt=0.0, le=10.0)]
    epochs: PositiveInt
    batch_size: PositiveInt
    patience: PositiveInt
    optimizer: Optimizer
    weight_decay: Annotated[float, Field(ge=0.0)]
    label_smoothing: Annotated[float, Field(ge=0.0, lt=1.0)]
    schedule: Literal["onecycle", "cosine", "constant"]
    num_workers: Annotated[int, Field(ge=0)]
    data_on_device: Literal["auto"] | bool
    device: Literal["auto", "cpu", "cuda"]
    deterministic: bool
    cpu_threads: Annotated[int, Field(ge=1, le=1024)]
    select: Literal["val_loss", "val_acc"]
    ema_decay: Annotated[float, Field(ge=0.0, lt=1.0)]
    ema_warmup: bool
    mixup: Annotated[float, Field(ge=0.0)]
    cutmix: Annotated[float, Field(ge=0.0)]
    decay_norm_and_bias: bool
    precision: Precision
    compile: bool
    nproc: PositiveInt

    @model_validator(mode="after")
    def _batch_divides_among_processes(self) -> TrainParams:
        if self.batch_size % self.nproc:
            raise ValueError(
                f"train.batch_size ({self.batch_size}) is the batch of all train.nproc "
                f"({self.nproc}) processes together: make it a multiple of train.nproc"
            )
        return self

    @model_validator(mode="after")
    def _mixed_batches_pair_up(self) -> TrainParams:
        per_process = self.batch_size // self.nproc
        if (self.mixup or self.cutmix) and per_process % 2:
            raise ValueError(
                f"train.mixup and train.cutmix mix each image with another of its batch, so a "
                f"process's batch must be even, not {per_process} (train.batch_size / "
                "train.nproc): an odd one would never be mixed"
            )
        return self


class AugmentParams(Section):
    policy: Literal["keras", "trivialaugment"]
    crop_scale: Annotated[float, Field(gt=0.0, le=1.0)]
    erasing: Annotated[float, Field(ge=0.0, le=1.0)]
    rotation: Annotated[float, Field(ge=0.0, le=180.0)]
    zoom: Annotated[float, Field(ge=0.0, lt=1.0)]
    width_shift: Annotated[float, Field(ge=0.0, lt=1.0)]
    height_shift: Annotated[float, Field(ge=0.0, lt=1.0)]
    shear: Annotated[float, Field(ge=0.0, lt=90.0)]
    horizontal_flip: bool
    fill_mode: Literal["nearest", "constant", "reflect"]


class ModelParams(Section):
    known_archs: ClassVar[tuple[str, ...]]
    arch_prefix: ClassVar[str] = ""  # any name after it is accepted here, checked later
    arch: str
    input_size: Annotated[int, Field(ge=8, le=1024)] | None
    epochs: PositiveInt | None
    lr_mult: Annotated[float, Field(gt=0.0)]
    optimizer: Optimizer | None
    weight_decay: Annotated[float, Field(ge=0.0)] | None
    precision: Precision | None

    @field_validator("arch")
    @classmethod
    def _known_arch(cls, arch: str) -> str:
        prefixed = bool(cls.arch_prefix) and arch.startswith(cls.arch_prefix)
        if arch not in cls.known_archs and not (prefixed and arch != cls.arch_prefix):
            known = ", ".join(cls.known_archs)
            if cls.arch_prefix:
                known += f", or {cls.arch_prefix}<name>"
            raise ValueError(f"unknown architecture {arch!r}; known: {known}")
        return arch


class ScratchParams(ModelParams):
    known_archs = SCRATCH_ARCHS
    width: Annotated[int, Field(ge=4, le=512)]
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] | None


class TransferParams(ModelParams):
    known_archs = TRANSFER_ARCHS
    arch_prefix = TIMM_PREFIX
    pretrained: bool
    weights: str | None
    freeze_backbone: bool
    frozen_epochs: Annotated[int, Field(ge=0)]
    frozen_share: Annotated[float, Field(ge=0.0, le=1.0)]
    backbone_lr_mult: Annotated[float, Field(gt=0.0)]
    layer_decay: Annotated[float, Field(gt=0.0, le=1.0)]

    @field_validator("weights")
    @classmethod
    def _weights_file_for_timm_only(cls, weights: str | None, info: ValidationInfo) -> str | None:
        if "arch" not in info.data:  # its own error says what is wrong
            return weights
        arch, pretrained = info.data["arch"], info.data.get("pretrained", True)
        if weights is not None and not arch.startswith(TIMM_PREFIX):
            raise ValueError(
                "a local weights file is read for timm/<name> architectures only, not "
                f"{arch}; leave it empty"
            )
        if weights is not None and not pretrained:
            raise ValueError(
                "set, but transfer.pretrained is false: set that to true to start from the "
                "file, or leave transfer.weights empty"
            )
        return weights


class EvaluateParams(Section):
    batch_size: PositiveInt
    tta_flip: bool
    ensemble_weights: Literal["equal", "fitted"]


class SubmissionParams(Section):
    model: Literal["auto", "scratch", "transfer", "ensemble"]
    id_column: str
    label_column: str
    id_from: Literal["stem", "name", "path"]
    labels_file: str | None


class Params(Section):
    seed: Annotated[int, Field(ge=0)]
    data: DataParams
    prepare: PrepareParams
    split: SplitParams
    check: CheckParams
    train: TrainParams
    augment: AugmentParams
    scratch: ScratchParams
    transfer: TransferParams
    evaluate: EvaluateParams
    submission: SubmissionParams

    def model(self, name: Literal["scratch", "transfer"]) -> ModelParams:
        return self.scratch if name == "scratch" else self.transfer

    def peak_lr(self, name: Literal["scratch", "transfer"]) -> float:
        """The model's peak learning rate (its new head's, for the transfer model)."""
        return self.train.lr * self.model(name).lr_mult

    @model_validator(mode="after")
    def _input_large_enough(self) -> Params:
        smallest = SMALLEST_INPUT.get(self.transfer.arch, 0)
        size = self.transfer.input_size or self.data.image_size
        if size < smallest:
            key = "transfer.input_size" if self.transfer.input_size else "data.image_size"
            raise ValueError(
                f"{key}: {self.transfer.arch} needs images of at least {smallest} px, not "
                f"{size}: set transfer.input_size to {smallest} or more"
            )
        return self


def read_yaml(path: Path) -> Any:
    """Read YAML 1.2, so that `1e-05` (as DVC writes 1e-5 back) is a number."""
    try:
        return YAML(typ="safe", pure=True).load(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path} not found: run from the project's root folder") from None
    except YAMLError as error:
        raise UserError(f"{path} is not valid YAML: {error}") from None


def load_params(path: str | Path = PARAMS_FILE) -> Params:
    path = Path(path)
    raw = read_yaml(path)
    try:
        return Params.model_validate(raw)
    except ValidationError as error:
        raise UserError(f"{path}: {describe(error)}") from None


def describe(error: ValidationError) -> str:
    """One line per problem, each naming the key (`train.lr: ...`)."""
    lines = []
    for problem in error.errors():
        key = _dotted(problem["loc"])
        if problem["type"] == "extra_forbidden":
            lines.append(f"{key}: unknown key{_did_you_mean(problem['loc'])}")
        elif problem["type"] == "missing":
            lines.append(f"{key}: missing; every parameter must be set in params.yaml")
        else:
            message = problem["msg"].removeprefix("Value error, ")
            value = problem.get("input")
            if isinstance(value, dict):  # a check across keys: its message names them
                lines.append(message)
            else:
                lines.append(f"{key}: {message} (got {value!r}){_how_to_unset(problem, value)}")
    return "; ".join(lines)


def _how_to_unset(problem: ErrorDetails, value: Any) -> str:
    """For a key that may be empty, given a word for nothing that YAML reads as text (`-S
    scratch.input_size=none`): what does leave it empty."""
    section, field = _section_model(problem["loc"][:-1]), problem["loc"][-1]
    nullable = section is not None and section._may_be_empty(str(field))
    if nullable and isinstance(value, str) and value.strip().lower() in ("none", "nil"):
        return f"; to leave it empty write null (`dvc exp run -S {_dotted(problem['loc'])}=null`)"
    return ""


def _section_model(section: tuple[int | str, ...]) -> type[Section] | None:
    """The model of the section at this location in params.yaml (None: not a section)."""
    model: Any = Params
    for part in section:
        field = model.model_fields.get(str(part)) if hasattr(model, "model_fields") else None
        if field is None:
            return None
        model = field.annotation
    return model if isinstance(model, type) and issubclass(model, Section) else None


def _dotted(location: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in location)


def _did_you_mean(location: tuple[int | str, ...]) -> str:
    """For an unknown key, the known key it is closest to, or the section's keys."""
    *section, unknown = (str(part) for part in location)
    model = _section_model(tuple(section))
    if model is None:
        return ""
    known = list(model.model_fields)
    prefix = "".join(f"{part}." for part in section)
    close = difflib.get_close_matches(unknown, known, n=1)
    if close:
        return f" (did you mean {prefix}{close[0]}?)"
    return f"; the keys{f' of {section[-1]}' if section else ''} are {', '.join(known)}"
