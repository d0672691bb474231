"""flashinfer's index mode is a protected install of a requirement: a bundle still carries that requirement."""

from __future__ import annotations

from rebuilt.build import builder
from rebuilt.tools.bundle import wheelhouse
from tests.conftest import fake_machine


def test_index_mode_requirement_reaches_the_wheelhouse(resolve):
    plan, _ = builder.make_plan(resolve({"stack": "aiak"}), ["flashinfer"], fake_machine())
    got = {s.name: wheelhouse.step_requirements(s) for s in plan.steps}
    assert got == {"build-requirements-index": ["setuptools>=77", "packaging>=24"],
                   "install-index": ["flashinfer-python==0.3.1"], "verify": []}
