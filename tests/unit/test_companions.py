"""Which version of an absent torchvision/torchaudio/triton matches the installed torch."""

from __future__ import annotations

import pytest

from rebuilt.build.guard import DistState, companion_matches, companion_pin

CPU = DistState("2.13.0+cpu", "r", requires=("filelock", "sympy>=1.13.3"))
CUDA = DistState("2.8.0", "r", requires=('triton==3.4.0; platform_system == "Linux" and platform_machine == "x86_64"',))
SOURCE = DistState("2.8.0a0+git5228986", "r")


@pytest.mark.parametrize("torch, dist, pin", [
    (CPU, "torchvision", "0.28.0+cpu"), (CPU, "torchaudio", "2.13.0+cpu"), (CPU, "triton", "3.7.1"),
    (CUDA, "torchvision", "0.23.0"), (CUDA, "torchaudio", "2.8.0"), (CUDA, "triton", "3.4.0"),
    (SOURCE, "torchvision", "0.23.0"), (SOURCE, "triton", "3.4.0"),
    (DistState("2.9.1+cu126", "r"), "torchvision", "0.24.1+cu126"),
    (DistState("2.12.0", "r"), "triton", None),  # its default build names no triton: nothing is known to match
    (None, "torchvision", None),
])
def test_companion_pin(torch, dist, pin):
    assert companion_pin(dist, torch)[0] == pin


def test_the_default_index_torchvision_does_not_match_a_cpu_torch():
    ok, why = companion_matches("torchvision", "0.28.0", CPU)
    assert not ok and "wanted torchvision==0.28.0+cpu" in why
    assert companion_matches("torchvision", "0.28.0+cpu", CPU)[0]
    assert not companion_matches("torchvision", "0.27.0+cpu", CPU)[0]
    assert not companion_matches("triton", "3.9.0", CPU)[0] and companion_matches("triton", "3.7.1", CPU)[0]
    assert companion_matches("torchvision", "0.23.0", SOURCE)[0]
