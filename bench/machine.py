"""What a benchmark ran on, and how much memory a command's processes took at their peak."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import psutil
import torch

from bench import processes
from bench.workspace import ENV
from imgclf.runtime import cpu_computes_bf16_natively

# The instruction sets CPU training times and bits depend on (matched as prefixes: amx_tile...).
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx")


def describe(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """CPU model (with its family and model numbers and the instruction sets that matter, where
    `cpuinfo` is there to read), cores and whether they compute bf16 natively (CPU training
    times depend on it), GPU if any, torch version: one line for a results table."""
    cpu = platform.processor() or platform.machine()
    if cpuinfo.exists():
        cpu = cpu_line(cpuinfo.read_text()) or cpu
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    bf16 = "native bf16" if cpu_computes_bf16_natively() else "no native bf16"
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    memory = psutil.virtual_memory().total / 2**30
    return f"{cpu}, {cores} cores ({bf16}), {memory:.0f} GiB, {gpu}, torch {torch.__version__}"


def cpu_line(cpuinfo: str) -> str:
    """'<model name> (family F, model M, stepping S; avx2, ...)' from /proc/cpuinfo's first CPU,
    or '' if it names none."""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        if not line.strip():
            if fields:
                break  # the first processor's block is enough
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    name = fields.get("model name", "")
    if not name:
        return ""
    numbers = [
        f"{label} {fields[key]}"
        for key, label in (("cpu family", "family"), ("model", "model"), ("stepping", "stepping"))
        if key in fields
    ]
    flags = [flag for flag in fields.get("flags", "").split() if flag.startswith(CPU_FLAGS)]
    details = ", ".join(numbers)
    if "flags" in fields:
        details += f"; {', '.join(flags) if flags else 'none of ' + ', '.join(CPU_FLAGS)}"
    return f"{name} ({details})" if details else name


def run_measured(command: list[str], cwd: Path) -> tuple[float, float]:
    """Run `command`; return its wall seconds and the peak resident memory (MiB) of all its
    processes together, sampled every 0.2 s. Raises if it fails."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=ENV)
    peak = 0.0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        root = psutil.Process(process.pid)
        while not done.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree) / 2**20)
            except psutil.Error:
                pass
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        code = processes.wait(process)
    finally:
        done.set()
        sampler.join()
    if code:
        raise subprocess.CalledProcessError(code, command)
    return time.perf_counter() - started, peak


def images_per_second(
    step: Callable[[tuple], object], batches: Iterable[tuple], warmup: int = 2
) -> float:
    """Images per second of `step` over `batches` (images first in each), timed after
    `warmup` of them; synchronised on CUDA."""
    seen, started = 0, 0.0
    for i, batch in enumerate(batches):
        if i == warmup:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            started = time.perf_counter()
        step(batch)
        seen += len(batch[0]) if i >= warmup else 0
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - started)


def run_data_stages(project: Path) -> None:
    """prepare, split and check, run directly (untimed): what every training run reads."""
    for stage in ("prepare", "split", "check"):
        run_measured([sys.executable, "-m", f"stages.{stage}"], project)


def run_training_stage(project: Path, model: str) -> tuple[float, dict]:
    """The training stage's wall seconds and its timing record (images/s among them)."""
    seconds, _ = run_measured([sys.executable, "-m", f"stages.train_{model}"], project)
    timing = json.loads((project / f"metrics/timing/train_{model}.json").read_text())[model]
    return seconds, timing
