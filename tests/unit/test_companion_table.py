"""One torch -> torchvision/torchaudio pairing, read by the guard (absent companions) and the doctor alike."""

from __future__ import annotations

import pytest

from rebuilt.build import companions
from rebuilt.build.guard import DistState, companion_pin


@pytest.mark.parametrize("torch, vision", [("2.5.1", "0.20"), ("2.8.0", "0.23"), ("2.10.0", "0.25"),
                                           ("2.13.0+cpu", "0.28"), ("1.13.1", None)])
def test_guard_and_checks_read_the_same_pairing(torch, vision):
    assert companions.torchvision_minor(torch) == vision
    pin, _ = companion_pin("torchvision", DistState(torch, "r"))
    assert (pin.rsplit(".", 1)[0].split("+")[0] if pin else None) == vision


def test_pairings_past_the_released_ones_are_marked_as_assumed():
    assert not companions.assumed("2.8.0") and companions.assumed("2.13.0")
