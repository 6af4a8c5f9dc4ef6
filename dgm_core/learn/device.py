"""Choosing where to compute: CUDA when present, then Apple MPS, else CPU; overridable by argument or DGM_DEVICE."""

from __future__ import annotations

import os

import torch


def pick_device(preference: str | None = None) -> torch.device:
    """The device to train on: ``preference`` or else DGM_DEVICE, one of "auto", "cpu", "cuda", "cuda:1", "mps"."""
    choice = (preference or os.environ.get("DGM_DEVICE") or "auto").strip().lower()
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(choice)
    except RuntimeError as error:
        raise ValueError(f"Unknown device {choice!r}: use auto, cpu, cuda or mps") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("CUDA was asked for but no CUDA GPU is available here (use --device cpu or auto)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("MPS was asked for but is not available here (use --device cpu or auto)")
    return device


def describe(device: torch.device) -> str:
    """A short human name for the status line, e.g. "cpu (2 threads)" or "cuda: NVIDIA H100"."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    if device.type == "cpu":
        threads = torch.get_num_threads()
        return f"cpu ({threads} thread{'s' if threads > 1 else ''})"
    return device.type
