"""transfer.arch timm/<name>: a timm model trained for real on the demo, weights from a local
file, and the one line that says where missing weights go. No test reaches a network:
timm's models are built with random weights or from files the tests write."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import timm
import torch

from imgclf.errors import UserError
from imgclf.evaluate import load_trained
from imgclf.models import build_model
from tests.conftest import ROOT, make_project, run

# One of timm's own models for tests: real timm code, a few thousand parameters.
ARCH = "timm/test_efficientnet"
NATIVE_SIZE = 160  # the input size of its pretrained configuration


@pytest.fixture(scope="module")
def timm_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo pipeline up to train_transfer with a timm backbone, random weights."""
    project = make_project(
        tmp_path_factory.mktemp("timm"),
        **{
            "transfer.arch": ARCH,
            "transfer.pretrained": False,
            "transfer.frozen_epochs": 1,
            "transfer.backbone_lr_mult": 0.1,
        },
    )
    result = run(["dvc", "repro", "train_transfer"], project)
    (project / "repro.log").write_text(result.stdout)
    return project


@pytest.mark.slow
def test_a_timm_backbone_trains_on_the_demo_at_its_own_input_size(timm_project: Path) -> None:
    log = (timm_project / "repro.log").read_text()
    assert "transfer epoch 1/2" in log and "[backbone frozen]" in log
    assert "transfer epoch 2/2" in log.split("[backbone frozen]")[-1]  # then everything trains
    trained = load_trained(timm_project / "models/transfer.pt")
    assert trained.meta["architecture"]["arch"] == ARCH
    assert trained.meta["architecture"]["image_size"] == NATIVE_SIZE
    assert trained.model.input_size == NATIVE_SIZE
    # timm's normalisation for this model (ImageNet's), on the 0-255 scale
    assert torch.allclose(trained.model.mean.flatten(), torch.tensor([123.675, 116.28, 103.53]))
    history = (timm_project / "plots/history/transfer.csv").read_text().splitlines()
    lrs = [float(line.split(",")[-1]) for line in history[1:]]
    assert len(lrs) == 2 and all(lr > 0 for lr in lrs)
    metrics = json.loads((timm_project / "metrics/train_transfer.json").read_text())
    assert 0.0 <= metrics["transfer"]["val_acc"] <= 1.0
    pixels = torch.randint(0, 256, (3, 3, 16, 16)).float()
    with torch.no_grad():
        assert trained.model.eval()(pixels).shape == (3, 10)


def test_the_new_head_is_timms_classifier_and_trains_apart_from_the_backbone() -> None:
    model = build_model("transfer", ARCH, num_classes=4, image_size=32)
    head = dict(model.named_parameters())
    head_names = [n for n, p in head.items() if any(p is q for q in model.head_parameters())]
    assert head_names == ["net.classifier.weight", "net.classifier.bias"]
    assert model.net.classifier.out_features == 4
    model.freeze_backbone()
    assert all(not p.requires_grad for p in model.backbone_parameters())


def test_a_timm_model_with_a_fixed_input_size_is_built_for_the_one_asked() -> None:
    model = build_model("transfer", "timm/test_vit", num_classes=3, image_size=32).eval()
    with torch.no_grad():
        assert model(torch.randint(0, 256, (2, 3, 32, 32)).float()).shape == (2, 3)


def test_weights_from_a_local_file(tmp_path: Path) -> None:
    torch.manual_seed(1)
    source = timm.create_model("test_efficientnet")  # 1000 ImageNet classes, as published
    state = source.state_dict()
    path = tmp_path / "my_weights.pth"
    torch.save({"state_dict": state, "epoch": 7}, path)  # a training checkpoint, not bare

    model = build_model("transfer", ARCH, 5, 32, pretrained=True, weights=str(path))
    for name, tensor in model.net.state_dict().items():
        if name.startswith("classifier."):
            continue
        assert torch.equal(tensor, state[name]), name
    assert model.net.classifier.weight.shape == (5, source.classifier.in_features)

    torch.save(timm.create_model("test_resnet").state_dict(), tmp_path / "other.pth")
    with pytest.raises(UserError, match=r"transfer\.weights: .*other\.pth does not hold weights"):
        build_model("transfer", ARCH, 5, 32, pretrained=True, weights=str(tmp_path / "other.pth"))


@pytest.mark.slow
def test_missing_weights_offline_stop_the_stage_with_one_line(
    timm_project: Path, tmp_path: Path
) -> None:
    """With no network (HF_HUB_OFFLINE=1: no retries) and an empty cache, the stage names the
    model, the cache folder to fill and how."""
    for name in ("data/prepared", "data/split.csv", "params.yaml"):
        source, target = timm_project / name, tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy)(source, target)
    params = tmp_path / "params.yaml"
    params.write_text(params.read_text().replace("pretrained: false", "pretrained: true"))
    hf_home = tmp_path / "hf"
    result = run(
        [sys.executable, "-m", "stages.train_transfer"],
        tmp_path,
        check=False,
        timeout=120,
        env={"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "HF_HOME": str(hf_home)},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    folder = hf_home / "hub" / "models--timm--test_efficientnet.r160_in1k"
    assert lines[0].startswith(
        f"error: the pretrained weights of timm model test_efficientnet are not in the "
        f"Hugging Face cache ({folder})"
    ), lines[0]
    assert "`hf download timm/test_efficientnet.r160_in1k`" in lines[0]
