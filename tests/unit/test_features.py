"""Build features as one ordered tuple: a subset, none, or another order reaches the plan as given;
the ccache wrappers for compilers named by an absolute path. No process is started."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from rebuilt.build import builder
from rebuilt.build.features import FEATURES, ccache_wrappers
from tests.conftest import fake_machine

BY_NAME = {f.name: f for f in FEATURES}


def rebuild_step(settings, features=FEATURES):
    plan, _ = builder.make_plan(settings, ["sgl-kernel"], fake_machine(), features=features)
    return next(s for s in plan.steps if s.name == "rebuild"), plan


def test_the_tuple_names_each_feature_once_in_its_order():
    assert [f.name for f in FEATURES] == ["guard", "stamps", "shim", "ccache", "proxy", "offline"]


def test_no_features_leave_the_recipes_env_alone(resolve):
    s = resolve({"ccache.enabled": True})
    bare, _ = rebuild_step(s, features=())
    full, _ = rebuild_step(s)
    assert "CCACHE_DIR" not in bare.env and "CUDAHOSTCXX" not in bare.env
    assert bare.env["PATH"] == "/opt/env/bin:${PATH}"  # the recipe's own folder only
    assert full.env["CCACHE_DIR"] and full.env["CUDAHOSTCXX"]


def test_a_subset_gives_only_its_env(resolve):
    s = resolve({"ccache.enabled": True})
    step, _ = rebuild_step(s, features=(BY_NAME["ccache"],))
    wd = Path(s.workdir())
    assert step.env["PATH"] == f"{wd}/state/ccache-bin:/opt/env/bin:${{PATH}}"
    assert "CUDAHOSTCXX" not in step.env  # no shim


def test_the_order_decides_path_precedence(resolve):
    s = resolve({"ccache.enabled": True})
    wd = Path(s.workdir())
    step, _ = rebuild_step(s)
    assert step.env["PATH"].startswith(f"{wd}/state/ccache-bin:{wd}/state/shim/gcc-12:")  # ccache runs the shim's
    swapped = tuple(BY_NAME[n] for n in ("guard", "stamps", "ccache", "shim", "proxy", "offline"))
    step, _ = rebuild_step(s, features=swapped)
    assert step.env["PATH"].startswith(f"{wd}/state/shim/gcc-12:{wd}/state/ccache-bin:")


def test_hooks_come_from_the_features_given(resolve, tmp_path):
    from rebuilt.build.features import hooks

    s = resolve({"workdir": str(tmp_path)})
    machine = fake_machine()
    made = hooks((BY_NAME["stamps"], BY_NAME["proxy"]), s, tmp_path, None, builder.Options(), machine)
    assert [type(h).__name__ for h in made] == ["Stamps"]  # proxy has no hook
    assert made[0].machine is machine  # the plan's probe: the stamp does not probe the machine again


def test_an_absolute_cxx_is_pointed_at_its_wrapper(resolve, monkeypatch):
    monkeypatch.setenv("CXX", "/opt/gcc/bin/g++")
    monkeypatch.setenv("CC", "gcc-12")  # a name: PATH finds it, the masquerade folder gets a link
    s = resolve({"ccache.enabled": True})
    wd = Path(s.workdir())
    step, _ = rebuild_step(s)
    assert step.env["CXX"] == f"{wd}/state/ccache-bin/abs/opt/gcc/bin/g++"
    assert "CC" not in step.env
    assert ccache_wrappers.bare_names(step.env) == {"gcc-12"}
    plain, _ = rebuild_step(resolve())
    assert "CXX" not in plain.env  # ccache off: as the caller has it


def test_a_step_that_sets_cxx_itself_is_wrapped_too(tmp_path):
    env = ccache_wrappers.env_for({"CXX": "/usr/bin/g++-12"}, tmp_path / "m", environ={})
    assert env == {"CXX": str(tmp_path / "m" / "abs" / "usr" / "bin" / "g++-12")}
    assert ccache_wrappers.env_for(env, tmp_path / "m", environ={}) == {}  # never wrapped twice
    assert ccache_wrappers.real_of(tmp_path / "m", env["CXX"]) == "/usr/bin/g++-12"


def test_the_wrapper_is_the_same_in_every_workdir_with_the_compilers_mtime(tmp_path):
    real = tmp_path / "opt" / "bin" / "g++"
    real.parent.mkdir(parents=True)
    real.write_text("#!/bin/sh\n")
    os.utime(real, ns=(1_000_000_000, 1_000_000_000))
    a = ccache_wrappers.write(tmp_path / "wd1" / "m", str(real))
    b = ccache_wrappers.write(tmp_path / "wd2" / "m", str(real))
    assert a.read_bytes() == b.read_bytes() and a.name == "g++" and os.access(a, os.X_OK)
    assert a.stat().st_mtime_ns == b.stat().st_mtime_ns == 1_000_000_000
    assert f"exec ccache {real}" in a.read_text()


def test_features_receive_the_env_of_the_features_before_them(resolve):
    seen = []

    def probe(settings, recipe, step, ctx, workdir, machine):
        seen.append(step.env.get("CUDAHOSTCXX"))
        return {}

    s = resolve()
    probe_feature = replace(BY_NAME["proxy"], name="probe", env=probe, warnings=None)
    rebuild_step(s, features=(BY_NAME["shim"], probe_feature))
    assert any(v and v.endswith("g++-12") for v in seen)  # the shim's, seen by the feature after it


def test_the_offline_setting_is_read_in_one_place():
    """``rebuilt.build.features.offline.enabled`` is the one reading of the setting; the doctor's own
    "may the checks reach the network" is another word (``Context.probe_network``)."""
    import re

    package = Path(__file__).resolve().parents[2] / "rebuilt"
    reads = re.compile(r"""\[["']offline["']\]|\.get\(["']offline["']|ctx\.offline\b""")
    found = [str(p.relative_to(package)) for p in package.rglob("*.py")
             for line in p.read_text().splitlines() if reads.search(line)]
    assert found == ["build/features/offline.py"]
