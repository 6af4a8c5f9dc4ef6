"""Where to compute: an explicit choice, the DGM_DEVICE variable, or the best device present."""

from __future__ import annotations

import pytest
import torch

from dgm_core.learn.device import describe, pick_device


def test_cpu_is_always_available_and_spelling_is_forgiving():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device(" CPU ") == torch.device("cpu")


def test_environment_variable_is_the_fallback_and_an_argument_wins(monkeypatch):
    monkeypatch.setenv("DGM_DEVICE", "cpu")
    assert pick_device() == torch.device("cpu")
    monkeypatch.setenv("DGM_DEVICE", "no-such-device")
    with pytest.raises(ValueError):
        pick_device()
    assert pick_device("cpu") == torch.device("cpu")


def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.delenv("DGM_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert pick_device().type == expected
    assert pick_device("auto").type == expected


def test_unknown_or_absent_devices_are_value_errors():
    with pytest.raises(ValueError, match="Unknown device"):
        pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            pick_device("cuda")
    if not torch.backends.mps.is_available():
        with pytest.raises(ValueError, match="MPS"):
            pick_device("mps")


def test_describe_names_the_device_and_its_threads():
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert describe(torch.device("cpu")) == "cpu (1 thread)"
        torch.set_num_threads(2)
        assert describe(torch.device("cpu")) == "cpu (2 threads)"
    finally:
        torch.set_num_threads(threads)
