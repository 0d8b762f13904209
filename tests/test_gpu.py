"""On a GPU, a training step never waits for the host: the batches are held on the device,
augmentation draws its numbers there, and the loss and accuracy are summed there. CUDA's
sync debug mode turns any synchronisation inside the steps into an error."""

from __future__ import annotations

import pytest
import torch

from bench.workspace import load_profile
from imgclf import paths
from imgclf.runtime import configure
from imgclf.samples import load_split_data
from imgclf.train import prepare_run, train_step, training_input, wrap
from tests.conftest import ROOT, split_the_data

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


@pytest.mark.parametrize("name", ["scratch", "transfer"])
def test_training_steps_never_wait_for_the_host(workdir, make_params, name: str) -> None:
    workdir(data__root=str(ROOT / "data/demo"), data__image_size=32, split__max_train_per_class=40)
    split_the_data()
    # The gpu profile's backbone: a lent GPU machine gets its weights package and no other.
    arch = load_profile("gpu")["transfer.arch"]
    params = make_params(
        train__device="cuda", train__data_on_device=True, train__batch_size=32, transfer__arch=arch
    )
    device = torch.device("cuda")
    configure(params.train, device)
    run = prepare_run(name, params, load_split_data(paths.MANIFEST, paths.SPLIT), device)
    net = wrap(run.model, params, device)
    net.train()
    generator = torch.Generator(device).manual_seed(0)
    sums = torch.zeros(2, dtype=torch.float64, device=device)
    batches = run.train_batches.epoch(1)
    seen = 0
    for step in range(6):
        if step >= 2:  # after the first steps' one-off work (cuDNN, the epoch's order)
            torch.cuda.set_sync_debug_mode("error")
        try:
            images, targets = next(batches)
            inputs = training_input(images, params.augment, generator, run.model.input_size)
            loss, logits = train_step(run, net, inputs, targets, step)
            sums[0] += loss.detach() * len(targets)
            sums[1] += (logits.argmax(1) == targets).sum()
            seen += len(targets)
        finally:
            torch.cuda.set_sync_debug_mode(0)
    assert sums[1].item() <= seen and torch.isfinite(sums[0]).item()
