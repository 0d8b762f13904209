"""Where and how training runs: the device, seeding, determinism, and torch.distributed."""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import random
import resource
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist

from imgclf.config import TrainParams
from imgclf.errors import UserError

# How long a collective waits for the other processes before the stage fails: a process that
# died is caught by torchrun within seconds; this bounds the wait if one hangs instead.
COLLECTIVE_TIMEOUT = timedelta(minutes=10)

# Float sums on the CPU come out in a machine-dependent order: torch's own kernels use the
# widest vector unit (AVX-512 adds 16 numbers at a time, AVX2 8), oneDNN picks convolution
# kernels by instruction set, MKL picks matrix-product code by CPU vendor and model, and every
# one of them splits work by the number of threads. Deterministic runs pin each of these to
# what every x86-64 CPU of the last decade has, so Intel and AMD, AVX2 and AVX-512, 2 or 16
# cores compute the same bits. The libraries read these variables when they first compute,
# so they are set before any tensor operation. No variable does this for MKL's vector math,
# which torch's CPU sqrt, exp, log, sin and cos call: it is not correctly rounded, its last
# bits change with MKL's code path, and by elimination they differ between an Intel Xeon and
# AMD EPYCs even under MKL_CBWR=COMPATIBLE (the AdamW step's square root:
# bench/results/fingerprint/README.md). So the stages do not call it; bench/mkl_vm_calls.py
# counts a command's calls.
PORTABLE_CPU_ENV = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_CBWR": "COMPATIBLE",  # MKL's matrix products the same on any vendor (not its vector math)
    "MKL_DYNAMIC": "FALSE",  # MKL and OpenMP use exactly the threads they are given
    "OMP_DYNAMIC": "FALSE",
}
PORTABLE_CPU_CAPABILITY = "AVX2"


def pick_device(choice: str) -> torch.device:
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise UserError("train.device is cuda but no CUDA device is available: set it to auto")
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def pin_cpu_arithmetic(train: TrainParams) -> None:
    """Use train.cpu_threads threads (shared among torchrun's processes on this host) and, in
    deterministic mode, the portable CPU code paths; call before any tensor operation."""
    if train.deterministic:
        os.environ.update(PORTABLE_CPU_ENV)
    processes = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
    torch.set_num_threads(max(1, train.cpu_threads // processes))
    capability = torch.backends.cpu.get_cpu_capability()
    if train.deterministic and capability != PORTABLE_CPU_CAPABILITY:
        print(
            f"warning: CPU arithmetic runs on torch's {capability} code path, not "
            f"{PORTABLE_CPU_CAPABILITY}: results will differ in the last bits from other "
            "machines' (a CPU without AVX2, or torch computed before it could be pinned)",
            file=sys.stderr,
        )


# glibc's malloc maps each block above its threshold (128 KiB at first, raised to at most 32 MiB
# as such blocks are freed) fresh from the kernel and unmaps it when freed, and gives a trimmed
# heap top back: a training step's activations, hundreds of MiB, then arrive as new pages every
# step, each one a page fault and a page the kernel zeroes. With the memory kept, Lite0's steps
# ran 1.41 times as fast in bf16 and 1.05 to 1.20 times in float32 on a 2-core AMD EPYC, for
# 0.25 to 0.35 GiB more at the peak, and its prediction of the test split 3.41 times as fast in
# batches of 256 (1.30 GiB more) and 2.47 in batches of 64, evaluate.batch_size's default
# (0.34 GiB more; bench/results/allocator-amd-zen4-2026-12-06.md).
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # mallopt's parameter numbers, from glibc's malloc.h
NEVER_TRIM = 2**31 - 1  # the largest threshold mallopt takes (an int)


def keep_freed_memory() -> None:
    """Have glibc's malloc keep the memory a training step (or a batch's prediction) frees for
    the next ones to reuse, as torch's caching allocator does on a GPU: no block mapped anew
    from the kernel, the heap never trimmed. A freed block is not always taken again at once
    (torch asks for aligned blocks, a little larger than the hole one leaves), so the heap grows
    for some steps before it settles. Nothing changes with another C library, and no result
    changes: only where the blocks come from. Every stage that runs a network calls it first."""
    if platform.libc_ver()[0] != "glibc":
        return
    libc = ctypes.CDLL(None)  # the C library this process already uses
    libc.mallopt(M_MMAP_MAX, 0)
    libc.mallopt(M_TRIM_THRESHOLD, NEVER_TRIM)


def describe_runtime(device: torch.device) -> dict[str, str | int]:
    """What the arithmetic ran on: the GPU, or the CPU's threads and code paths."""
    if device.type == "cuda":
        return {"device": torch.cuda.get_device_name(device)}
    pinned = {name: os.environ[name] for name in PORTABLE_CPU_ENV if name in os.environ}
    return {
        "device": "cpu",
        "threads": torch.get_num_threads(),
        "capability": torch.backends.cpu.get_cpu_capability(),
        **pinned,
    }


def configure(train: TrainParams, device: torch.device) -> None:
    """Deterministic kernels when asked (always on the CPU); fast autotuned ones otherwise."""
    if train.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=device.type == "cuda")
    torch.backends.cudnn.benchmark = device.type == "cuda" and not train.deterministic
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True


# Share of the free GPU memory the training data may take when train.data_on_device is auto;
# the rest is the model's, its activations' and the optimizer's.
DATA_SHARE_OF_GPU = 0.25


def fits_on_device(nbytes: int, device: torch.device) -> bool:
    """Whether `nbytes` of training images fit comfortably on `device`. On the CPU, never:
    holding them gained 0 to 7 % of training speed over streaming (bench/throughput.py, the
    cpu profile, within a few percent of run-to-run noise) and would cost their size in RAM,
    while streaming keeps memory flat."""
    if device.type != "cuda":
        return False
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes <= DATA_SHARE_OF_GPU * free


def uses_bfloat16(
    device: torch.device, precision: str = "auto", deterministic: bool = True
) -> bool:
    """Whether a model computes in bf16 mixed precision (weights and sums stay float32):
    `precision` bfloat16, or auto on a GPU, or auto on a CPU that computes bf16 natively
    (AVX-512 BF16 or AMX) when results need not be the same bits everywhere."""
    if precision != "auto":
        return precision == "bfloat16"
    if device.type == "cuda":
        return True
    return cpu_computes_bf16_natively() and not deterministic


def cpu_computes_bf16_natively() -> bool:
    """Whether this CPU has AVX-512 BF16 or AMX, where `precision: auto` trains in bf16 when
    `deterministic` is off (the scratch network 1.8x as fast as in float32 on a 2-core Xeon:
    bench/results/cpu-intel-bf16/ against bench/results/cpu-intel/)."""
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def autocast(device: torch.device, bfloat16: bool) -> torch.autocast:
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bfloat16)


def derive_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from (seed, epoch, rank, ...)."""
    state = np.random.SeedSequence(list(parts)).generate_state(1, dtype=np.uint64)
    return int(state[0] >> np.uint64(1))


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (every device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1 << 20 if sys.platform == "darwin" else 1 << 10), 1)


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main_process() -> bool:
    return rank() == 0


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def started_by_torchrun() -> bool:
    return "TORCHELASTIC_RUN_ID" in os.environ


def launch_torchrun(module: str, nproc: int) -> None:
    """Run `python -m module` as `nproc` processes on this host under torchrun and wait.

    Several hosts: set torchrun's own variables (PET_NNODES, PET_NODE_RANK, PET_MASTER_ADDR,
    PET_MASTER_PORT) on each; on one host, --standalone finds a free port by itself.
    """
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}"]
    if int(os.environ.get("PET_NNODES", "1")) <= 1:
        command.append("--standalone")
    result = subprocess.run([*command, "-m", module], check=False)
    if result.returncode != 0:
        raise UserError(
            f"{module}: a training process failed (exit status {result.returncode}) and torchrun "
            "stopped the others; its error is above"
        )


@contextlib.contextmanager
def process_group(train: TrainParams) -> Iterator[torch.device]:
    """This process's device; inside torchrun, joined to the group (NCCL on GPUs, gloo on CPUs)."""
    device = pick_device(train.device)
    if not started_by_torchrun():
        yield device
        return
    if train.batch_size % int(os.environ["WORLD_SIZE"]):
        raise UserError(
            f"train.batch_size ({train.batch_size}) is the batch of all processes together: "
            f"make it a multiple of their number ({os.environ['WORLD_SIZE']})"
        )
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, timeout=COLLECTIVE_TIMEOUT)
    try:
        yield device
    finally:
        dist.destroy_process_group()
