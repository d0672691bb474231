"""The settings cascade: every layer, its source, and clear errors for bad keys and values."""

from __future__ import annotations

import pytest

from rebuilt.core import settings as settings_mod
from rebuilt.errors import ConfigError


def test_defaults_then_stack_then_yaml_then_env_then_flags(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / ".invoke.yaml").write_text("rebuilt:\n  jobs: 3\n  sgl-kernel:\n    nvcc_threads: 4\n")
    (tmp_path / "invoke.yaml").write_text("rebuilt:\n  jobs: 5\n  proxy:\n    url: http://u:pw@proxy:3128\n")
    env = {"INVOKE_REBUILT_SGL_KERNEL_NVCC_THREADS": "6"}
    s = settings_mod.resolve({"torch.mode": "wheel"}, cwd=tmp_path, home=home, environ=env)
    assert s["workdir"] == ".rebuilt" and s.source("workdir").startswith("defaults")
    assert s["cuda"] == "12.9" and s.source("cuda") == "stack sglang-0.5.4.toml"
    assert s["sglang.ref"] == "v0.5.4" and s.source("sglang.ref") == "stack sglang-0.5.4.toml"
    assert s["deepep.ref"] == "v1.2.1" and s.source("deepep.ref").startswith("recipe")
    assert s["jobs"] == 5 and s.source("jobs") == str(tmp_path / "invoke.yaml")
    assert s["sgl-kernel.nvcc_threads"] == 6 and s.source("sgl-kernel.nvcc_threads") == \
        "env INVOKE_REBUILT_SGL_KERNEL_NVCC_THREADS"
    assert s["torch.mode"] == "wheel" and s.source("torch.mode") == "flag --set torch.mode"
    assert s.redacted()["proxy.url"] == "http://***@proxy:3128"


def test_stack_chosen_by_flag_changes_stack_layer(resolve):
    s = resolve({"stack": "aiak"})
    assert s.stack.name == "aiak"
    assert s["torch.mode"] == "keep" and s["flashinfer.requirement"] == "flashinfer-python==0.3.1"
    assert s["deepep.torch_cuda_arch_list"] == "9.0"  # 8.0 with SM90 features stops DeepEP v1.2.1 in ptxas


def test_unknown_key_in_yaml_has_did_you_mean(tmp_path):
    (tmp_path / "invoke.yaml").write_text("rebuilt:\n  jbos: 3\n")
    with pytest.raises(ConfigError, match=r"unknown setting 'jbos' in .*invoke.yaml \(did you mean 'jobs'\?\)"):
        settings_mod.resolve(cwd=tmp_path, home=tmp_path, environ={})


def test_unknown_env_var(tmp_path):
    with pytest.raises(ConfigError, match="INVOKE_REBUILT_PROXY_ULR.*did you mean 'INVOKE_REBUILT_PROXY_URL'"):
        settings_mod.resolve(cwd=tmp_path, home=tmp_path, environ={"INVOKE_REBUILT_PROXY_ULR": "x"})


@pytest.mark.parametrize("key,value,message", [
    ("jobs", "many", "expected a whole number or 'auto'"),
    ("jobs", "0", "must be at least 1"),
    ("checks", "maybe", "expected true or false"),
    ("torch.mode", "sideways", "is not one of"),
    ("sgl-kernel.nvcc_threads", "lots", "expected a whole number"),
])
def test_bad_values_name_the_setting_and_layer(resolve, key, value, message):
    with pytest.raises(ConfigError, match=message) as err:
        resolve({key: value})
    assert key in str(err.value)


def test_unknown_stack_did_you_mean(resolve):
    with pytest.raises(ConfigError, match="unknown stack 'aiack' \\(did you mean 'aiak'\\?\\)"):
        resolve({"stack": "aiack"})


def test_malformed_yaml_names_file_and_line(tmp_path):
    (tmp_path / "invoke.yaml").write_text("rebuilt:\n  jobs: [1,\n")
    with pytest.raises(ConfigError, match=r"invoke.yaml: line \d+ malformed YAML"):
        settings_mod.resolve(cwd=tmp_path, home=tmp_path, environ={})


def test_set_assignments():
    assert settings_mod.parse_assignments(["a.b=1", "c = x=y"]) == {"a.b": "1", "c": "x=y"}
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        settings_mod.parse_assignments(["novalue"])


def test_list_setting_from_env(resolve):
    s = resolve(environ={"INVOKE_REBUILT_PROTECTED": "torch, triton"})
    assert s["protected"] == ["torch", "triton"]


# --------------------------------------------------------------------------- bad input, one message each


@pytest.mark.parametrize("text, message", [
    ("rebuilt: [1\n", r"invoke.yaml: line 2 malformed YAML"),
    ("rebuilt: 5\n", r"the `rebuilt:` key must hold a mapping of settings, got 5"),
    ("- a\n- b\n", r"expected a mapping at the top level .* got a list"),
    ("tasks: 5\n", r"`tasks:` is one of invoke's own sections"),
    ("run: {env: 3}\n", r"`run.env:` is one of invoke's own sections"),
])
def test_invoke_files_that_invoke_would_choke_on(tmp_path, text, message):
    path = tmp_path / "invoke.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        settings_mod.read_invoke_file(path)


def test_an_ordinary_invoke_file_passes(tmp_path):
    path = tmp_path / "invoke.yaml"
    path.write_text("run: {echo: true}\nrebuilt:\n  jobs: 4\n")
    assert settings_mod.read_invoke_file(path)["rebuilt"] == {"jobs": 4}


@pytest.mark.parametrize("value", ["0", "-3"])
def test_nvcc_threads_must_be_at_least_one_from_any_layer(resolve, value):
    with pytest.raises(ConfigError, match=r"sgl-kernel.nvcc_threads .*must be at least 1"):
        resolve({"sgl-kernel.nvcc_threads": value})
    with pytest.raises(ConfigError, match=r"env INVOKE_REBUILT_FLASHINFER_NVCC_THREADS.*must be at least 1"):
        resolve(environ={"INVOKE_REBUILT_FLASHINFER_NVCC_THREADS": value})
    assert resolve({"sgl-kernel.nvcc_threads": "2"})["sgl-kernel.nvcc_threads"] == 2


def _recipes(tmp_path, files: dict[str, str]):
    rdir = tmp_path / "recipes"
    (rdir / "stacks").mkdir(parents=True)
    (rdir / "ok.toml").write_text('[recipe]\nsummary = "fine"\n[options]\nn = 2\n'
                                  '[[steps]]\nname = "a"\nrun = ["true"]\n')
    (rdir / "stacks" / "s.toml").write_text('[stack]\nname = "s"\n[components.ok]\nn = 3\n'
                                            + "".join(f"[components.{n}]\n" for n in files if n != "ok"))
    for name, text in files.items():
        (rdir / f"{name}.toml").write_text(text)
    return rdir


def test_recipe_limits_are_data(tmp_path, resolve):
    from rebuilt.core import recipes

    rdir = _recipes(tmp_path, {"lim": '[recipe]\nsummary = "x"\n[options]\nshards = 4\n[limits]\nshards = {min = 1, '
                                      'max = 8}\n[[steps]]\nname = "a"\nrun = ["true"]\n'})
    kw = {"recipes_dir": rdir, "stacks_dir": rdir / "stacks"}
    assert recipes.get("lim", rdir).limits == {"shards": (1, 8)}
    with pytest.raises(ConfigError, match=r"lim.shards .*9 must be at most 8"):
        resolve({"stack": "s", "lim.shards": "9"}, **kw)
    bad = _recipes(tmp_path / "2", {"lim": '[recipe]\nsummary = "x"\n[options]\nshards = 0\n[limits]\nshards = '
                                            '{min = 1}\n'})
    with pytest.raises(ConfigError, match=r"lim.toml: default shards = 0 must be at least 1"):
        recipes.get("lim", bad)


def test_a_bad_recipe_breaks_only_what_uses_it(tmp_path, resolve):
    from rebuilt.core import recipes

    rdir = _recipes(tmp_path, {"broken": '[recipe\nsummary = "x"\n',
                               "typed": 'steps = 5\n[recipe]\nsummary = "x"\n',
                               "ghosty": '[recipe]\nsummary = "x"\nrequires = ["ghost"]\n'})
    kw = {"recipes_dir": rdir, "stacks_dir": rdir / "stacks"}
    s = resolve({"stack": "s"}, **kw)  # the stack names the broken ones too: settings still resolve
    assert s["ok.n"] == 3 and set(s.stack.components) == {"ok", "broken", "typed", "ghosty"}
    assert set(recipes.invalid(rdir)) == {"broken", "typed", "ghosty"}
    with pytest.raises(ConfigError, match=r"broken.toml:1:\d+: malformed TOML"):
        recipes.get("broken", rdir)
    with pytest.raises(ConfigError, match=r"typed.toml:1: steps: must be a list, each an object \(a table\), got 5"):
        recipes.get("typed", rdir)
    with pytest.raises(ConfigError, match=r"ghosty.toml:3: recipe.requires: unknown recipe 'ghost'"):
        recipes.get("ghosty", rdir)
    with pytest.raises(ConfigError, match=r"broken.toml:1:\d+: malformed TOML"):  # setting it on purpose says why
        resolve({"stack": "s", "broken.x": "1"}, **kw)


@pytest.mark.parametrize("ref", ["bad..ref", "-x", "a b", "v1~2", "x.lock", "feat/", "@{u}"])
def test_bad_git_refs_are_refused(resolve, ref):
    with pytest.raises(ConfigError, match="not a valid git ref name"):
        resolve({"sglang.ref": ref})


@pytest.mark.parametrize("ref", ["v0.5.4", "pr/12345", "HEAD", "release/v0.5", "0123456789abcdef" * 2 + "01234567"])
def test_good_git_refs_pass(resolve, ref):
    assert resolve({"sglang.ref": ref})["sglang.ref"] == ref


def test_a_folder_setting_that_is_a_file(resolve, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    for value in (str(f), str(f / "sub")):
        with pytest.raises(ConfigError, match=r"workdir .*is a file, not a folder"):
            resolve({"workdir": value})


def test_a_recipe_option_set_without_its_recipe_names_the_set_flag_and_every_recipe(resolve):
    with pytest.raises(ConfigError) as err:
        resolve(assignments=settings_mod.parse_assignments(["nvcc_threads=4"]))
    message = str(err.value)
    assert message.startswith("unknown setting 'nvcc_threads' in flag --set nvcc_threads:"), message
    assert "--nvcc-threads" not in message and "did you mean" not in message
    assert "sgl-kernel.nvcc_threads" in message and "vllm.nvcc_threads" in message
    assert err.value.hint == "name the recipe it is for: --set <recipe>.nvcc_threads=4"
    with pytest.raises(ConfigError, match=r"'nvcc_threads' in env INVOKE_REBUILT_NVCC_THREADS: .*vllm") as err:
        resolve(environ={"INVOKE_REBUILT_NVCC_THREADS": "4"})
    assert err.value.hint == "name the recipe it is for: INVOKE_REBUILT_<RECIPE>_NVCC_THREADS=4"
    assert resolve(assignments={"checks": "false"}).source("checks") == "flag --set checks"
