"""The settings cascade: every layer, its source, and clear errors for bad keys and values."""

from __future__ import annotations

import pytest

from rebuilt import settings as settings_mod
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
