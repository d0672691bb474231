"""Recipe and stack files: every shipped one loads; malformed ones fail with file and reason."""

from __future__ import annotations

import pytest

from rebuilt.core import recipes
from rebuilt.errors import ConfigError


def test_every_recipe_and_stack_loads():
    names = recipes.recipe_names()
    assert {"torch", "torchvision", "flashinfer", "sglang", "sgl-kernel", "deepep", "speedgate", "vllm"} <= set(names)
    for name in names:
        assert recipes.get(name).summary
    for stack in recipes.stack_names():
        recipes.load_stack(stack)


def _write(tmp_path, name, text):
    (tmp_path / "stacks").mkdir(exist_ok=True)
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def test_malformed_toml_names_file_and_line(tmp_path):
    path = _write(tmp_path, "broken", '[recipe]\nname = "broken"\nsummary = "x\n')
    with pytest.raises(ConfigError, match=r"broken.toml:3:\d+: malformed TOML: "):
        recipes.parse_recipe(path)


@pytest.mark.parametrize("body,message", [
    ('[recipe]\nsummary = "s"\n[[steps]]\nname = "a"\n', "exactly one of run, shell or action"),
    ('[recipe]\nsummary = "s"\n[[steps]]\nname = "a"\naction = "fetchh"\n', "unknown action 'fetchh'"),
    ('[recipe]\nsummary = "s"\n[[steps]]\nname = "a"\nrun = ["x"]\nwhen = "mdoe == 1"\n', "unknown 'mdoe'"),
    ('[recipe]\nsummary = "s"\n[options]\nrequirement = "torch==>2"\n', "invalid requirement 'torch==>2'"),
    ('stesp = 1\n[recipe]\nsummary = "s"\n', "bad.toml:1: stesp: unknown key \\(did you mean 'steps'\\?\\)"),
    ('[recipe]\nsummary = "s"\n[[steps]]\nname = "a"\nrun = ["x"]\n[[steps]]\nname = "a"\nrun = ["y"]\n',
     "two steps are named 'a'"),
    ('[recipe]\nsummary = "s"\n[[steps]]\nname = "a"\nrun = ["x"]\nwhen = "__import__(1)"\n', "not allowed"),
])
def test_bad_recipes(tmp_path, body, message):
    with pytest.raises(ConfigError, match=message):
        recipes.parse_recipe(_write(tmp_path, "bad", body))


def test_dependency_cycle_is_reported(tmp_path):
    for name, req in (("a", "b"), ("b", "c"), ("c", "a")):
        _write(tmp_path, name, f'[recipe]\nsummary = "s"\nrequires = ["{req}"]\n')
    all_r = {n: recipes.parse_recipe(tmp_path / f"{n}.toml") for n in "abc"}
    with pytest.raises(ConfigError, match="dependency cycle: a -> b -> c -> a"):
        recipes.build_order(["a", "b", "c"], all_r)


def test_build_order_of_the_default_stack():
    stack = recipes.load_stack("sglang-0.5.4")
    order = recipes.build_order(list(stack.components), recipes.all_recipes())
    assert order.index("torch") < order.index("flashinfer") < order.index("sglang")
    assert order.index("sgl-kernel") < order.index("sglang") and order.index("torchvision") < order.index("sglang")


def test_invalid_version_in_stack(tmp_path):
    (tmp_path / "s.toml").write_text('[components.torch]\nversion = "two.eight"\n')
    with pytest.raises(ConfigError, match="invalid version 'two.eight'"):
        recipes.load_stack(str(tmp_path / "s.toml"))


def test_unknown_component_in_stack(tmp_path):
    (tmp_path / "s.toml").write_text('[components.sglnag]\nref = "x"\n')
    with pytest.raises(ConfigError, match="'sglnag' has no recipe \\(did you mean 'sglang'\\?\\)"):
        recipes.load_stack(str(tmp_path / "s.toml"))
