"""The CUDA path, checked in one short script: every family trains a few seconds on the GPU the way the app trains
(``Run`` and the scheduler's training processes), image models against the CPU.

    python -m bench.gpu_check                   # on a machine with a GPU: ≤ 5 minutes
    python -m bench.gpu_check --device cpu      # the same path on the CPU (to try the script where there is none)

For each model: steps/s on the device through a training process, the held-out score of the weights it kept, and
for image models the CPU's steps/s in the same process arrangement and the ratio (target: ≥ 5× on the GPU). Then the
GPU memory each training process holds (``nvidia-smi``), and a verdict per target.
"""

from __future__ import annotations

import argparse
import math
import shutil
import subprocess
import time

import torch

from dgm_core.runs.run import Run
from dgm_core.runs.spec import RunSpec
from dgm_core.serve.scheduler import Scheduler

FAMILIES = [  # (model, data set): one or more per family, and the image models the GPU should speed up
    ("MADE", "moons"),
    ("RealNVP", "moons"),
    ("NSF", "moons"),
    ("VAE", "moons"),
    ("GAN", "moons"),
    ("DDPM", "moons"),
    ("Flow matching", "moons"),
    ("EBM", "moons"),
    ("PixelCNN", "digits"),
    ("Transformer", "digits"),
    ("Glow", "digits"),
    ("VAE", "digits"),
    ("DDPM", "digits"),
    ("VDM", "digits"),
]
SPEEDUP_TARGET = 5.0


def train(scheduler: Scheduler, model: str, dataset: str, device: torch.device, seconds: float) -> dict:
    """One run of the registry's defaults, ``seconds`` of training time in the scheduler's training processes."""
    run = Run(RunSpec.defaults(model, dataset, steps=1_000_000), device, sample_every_s=None)
    run.start(max_seconds=seconds)
    scheduler.submit(run)
    deadline = time.monotonic() + 10 * seconds + 60
    while run.active and time.monotonic() < deadline:
        time.sleep(0.2)
    kept = run.kept.scores if run.kept else None
    score = kept.nll.get("test") if kept and kept.nll else (kept.val_mmd if kept else None)
    return {
        "steps": run.step,
        "steps_per_s": run.step / run.elapsed_s if run.elapsed_s else 0.0,
        "score": score,
        "finished": not run.active,
        "error": run.message if run.phase == "failed" else "",
    }


def gpu_memory_by_process() -> dict[int, int]:
    """MiB of GPU memory each process holds, from ``nvidia-smi`` (empty where there is none)."""
    if shutil.which("nvidia-smi") is None:
        return {}
    out = subprocess.run(
        ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
        timeout=20,
    ).stdout
    return {int(pid): int(mib) for pid, mib in (line.split(", ") for line in out.strip().splitlines() if line)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--seconds", type=float, default=6.0, help="training time per run")
    parser.add_argument("--workers", type=int, default=2, help="training processes (the app's default: one per core)")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"torch {torch.__version__}; CUDA available: {torch.cuda.is_available()}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("No CUDA device here: run with --device cpu to try the script.")
        print(f"device: {torch.cuda.get_device_name(device)}, capability {torch.cuda.get_device_capability(device)}")
    started = time.perf_counter()
    scheduler = Scheduler(workers=args.workers, processes=True)
    cpu_scheduler = Scheduler(workers=args.workers, processes=True) if device.type == "cuda" else None
    print(f"{'model':<15}{'data':<8}{'steps/s':>9}{'steps':>7}{'score':>10}{'CPU st/s':>10}{'×CPU':>7}  status")
    ratios, failures = [], []
    for model, dataset in FAMILIES:
        got = train(scheduler, model, dataset, device, args.seconds)
        cpu = None
        if cpu_scheduler is not None and dataset == "digits":
            cpu = train(cpu_scheduler, model, dataset, torch.device("cpu"), args.seconds)["steps_per_s"]
            ratios.append((model, got["steps_per_s"] / cpu if cpu else math.inf))
        trained = got["finished"] and got["steps"] > 0 and got["score"] is not None and math.isfinite(got["score"])
        if not trained:
            failures.append(f"{model} on {dataset}: {got['error'] or 'no evaluated weights'}")
        score = f"{got['score']:.3f}" if got["score"] is not None else "—"
        line = f"{model:<15}{dataset:<8}{got['steps_per_s']:>9.1f}{got['steps']:>7}{score:>10}"
        line += f"{cpu:>10.1f}{got['steps_per_s'] / cpu:>7.1f}" if cpu else f"{'':>10}{'':>7}"
        print(line + ("  trained" if trained else "  FAILED"), flush=True)
    memory = gpu_memory_by_process()
    processes = [process.process.pid for process in scheduler.processes if process.process is not None]
    held = {pid: memory.get(pid) for pid in processes}
    print(f"GPU memory per training process (MiB): {held or 'no nvidia-smi here'}")
    print(f"every family trains: {'yes' if not failures else 'NO'}" + "".join(f"\n  {f}" for f in failures))
    if ratios:
        slowest = min(ratios, key=lambda r: r[1])
        met = slowest[1] >= SPEEDUP_TARGET
        verdict = "met" if met else "MISSED"
        print(f"image models ≥ {SPEEDUP_TARGET:.0f}× the CPU: {verdict} (slowest: {slowest[0]} ×{slowest[1]:.1f})")
    print(f"took {time.perf_counter() - started:.0f} s")
    scheduler.pause()
    scheduler.close()
    if cpu_scheduler is not None:
        cpu_scheduler.pause()
        cpu_scheduler.close()


if __name__ == "__main__":
    main()
