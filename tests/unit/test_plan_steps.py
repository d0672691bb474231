"""How a recipe becomes steps: the checkout, patches, conditions, cwd, env, needs, what installs and replaces,
the job count and what the no-op stamp compares. Small recipes written by the tests, a fake machine, no
features (tests/unit/test_plans.py has the shipped recipes with every feature)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from rebuilt.build import features as features_mod
from rebuilt.build import plan as plan_mod
from rebuilt.core import recipes as recipes_mod
from rebuilt.core.fs import sha256_file
from rebuilt.errors import ConfigError
from tests.conftest import fake_machine

ROOT = Path(__file__).resolve().parents[2]
PY = "/opt/env/bin/python"

DEMO = '''
unset = ["CMAKE_INSTALL_PREFIX"]

[recipe]
name = "demo"
summary = "a recipe of the plan tests"
replaces = ["demo-dist"]
mem_per_job_gb = 2.0
nvcc_threads_option = "threads"
needs = ["git", {need = "nvcc", when = "cuda_build"}]
provides = ["uv"]

[source]
url = "https://git.example/demo.git"
ref = "v1"
dir = "demo_src"
subdir = "pkg"
submodules = true
when = "mode != 'index'"

[options]
mode = "source"
cuda_build = true
flag = "on"
threads = 4
mirror = "https://user:hunter2@git.example/x"

[env]
MAX_JOBS = "{jobs}"
PLAIN = "plain"
http_proxy = "http://proxy.example:3128"
CCACHE_DIR = "/tmp/cc"
CMAKE_CXX_COMPILER_LAUNCHER = "ccache"
TORCH_NO_COMPILER_WRAPPER = "1"
SECRET_URL = "{mirror}"

[[steps]]
name = "configure"
run = ["cmake", "-j{jobs}", "{src}", {args = ["--cuda"], when = "cuda_build"}]
cwd = "sub"
env = {STEP_ENV = "{flag}"}
unset = ["STEP_UNSET"]
path_prepend = ["{workdir}/bin", "/opt/x"]
note = "configured for {recipe}"
needs = ["cmake>=3.26", "git", {need = "ninja", when = "not cuda_build"}, "nvcc"]

[[steps]]
name = "install"
shell = "make install"
cwd = "{workdir}/out"
installs = true

[[steps]]
name = "install-nothing-replaced"
shell = "true"
installs = true
replaces = []

[[steps]]
name = "swap"
shell = "true"
replaces = ["other-dist"]

[[steps]]
name = "benchmark"
run = ["bench"]
gpu = true
network = true

[[steps]]
name = "cpu-only"
run = ["cpu"]
when = "not cuda_build"

[[steps]]
name = "keep"
action = "keep-installed"
with = { dist = "torch", expect = "2.8.0" }

[[steps]]
name = "keep-missing"
action = "keep-installed"
with = { dist = "nothere", expect = "" }

[[steps]]
name = "guarded"
action = "pip-protected"
with = { target = "--no-build-isolation -e {flag}" }
provides = ["torch"]

[[steps]]
name = "guarded-list"
action = "pip-protected"
with = { target = ["-e", "."], python = "/other/python" }

[[steps]]
name = "drop"
action = "drop-requirements"
with = { files = "requirements.txt requirements-build.txt", resolve = "requirements.txt" }

[[steps]]
name = "drop-list"
action = "drop-requirements"
with = { files = ["a.txt"] }

[[steps]]
name = "verify"
action = "check-import"
with = { module = "demo", count = 3 }
provides = ["cxx"]

[artifacts]
wheels = ["dist/*.whl", "extra/*.whl"]
when = "mode == 'source'"

[[warnings]]
when = "flag == 'on'"
text = "flag is {flag} in {recipe}"

[[warnings]]
when = "flag == 'off'"
text = "never shown"

[[warnings]]
text = "always shown"
'''

BARE = '''
[recipe]
name = "bare"
summary = "no source, no steps"
provides = ["uv"]

[options]
packages = []
'''

SHADOW = '''
[recipe]
name = "shadow"
summary = "an option named like a built-in placeholder"

[options]
jobs = 3

[[steps]]
name = "x"
run = ["x"]
'''

CONTEXT = '''
[recipe]
name = "ctx"
summary = "every built-in placeholder in one argv"

[source]
url = "https://git.example/ctx.git"
ref = "main"

[[steps]]
name = "show"
run = ["{recipe}", "{python}", "{python_bin}", "{python_prefix}", "{cmake_prefix}", "{jobs}", "{workdir}",
       "{wheelhouse}", "{src}", "{build_dir}", "{cuda_home}", "{nvcc}", "{cuda}", "{arch_list}", "{nvshmem_dir}",
       "{nvshmem_pip}", "{cuda_cccl}", "{python_version}", "{version}", "{gpu}", "{nvshmem}", "{ccache}",
       "{offline}"]
'''


@pytest.fixture(autouse=True)
def demo_recipes(tmp_path, monkeypatch):
    folder = tmp_path / "recipes"
    folder.mkdir()
    for name, text in {"demo": DEMO, "bare": BARE, "shadow": SHADOW, "ctx": CONTEXT}.items():
        (folder / f"{name}.toml").write_text(text)
    monkeypatch.setattr(recipes_mod, "RECIPES_DIRS", [folder, ROOT / "recipes"])
    monkeypatch.delenv("REBUILT_PATCHES_DIR", raising=False)


def plan_of(settings, name="demo", machine=None, placeholders=False, features=()):
    machine = machine or fake_machine()
    wd = settings.workdir()
    return plan_mod.plan_recipe(settings, recipes_mod.get(name), machine, wd, placeholders, features)


def by_name(rp):
    return {s.name: s for s in rp.steps}


def test_steps_in_order_checkout_first_collect_last(resolve):
    rp = plan_of(resolve())
    assert [s.name for s in rp.steps] == [
        "fetch", "configure", "install", "install-nothing-replaced", "swap", "benchmark", "keep", "keep-missing",
        "guarded", "guarded-list", "drop", "drop-list", "verify", "collect"]
    assert all(s.recipe == "demo" for s in rp.steps)


def test_fetch_step(resolve, tmp_path):
    rp = plan_of(resolve())
    fetch = by_name(rp)["fetch"]
    src = str(tmp_path / "wd" / "src" / "demo_src")
    assert rp.source_dir == src
    assert fetch.cwd == str(tmp_path / "wd" / "src") and fetch.action == "fetch" and fetch.network
    assert fetch.args == {"url": "https://git.example/demo.git", "ref": "v1", "dest": src, "submodules": True}
    assert fetch.needs == ("git",) and not fetch.installs and not fetch.gpu


def test_a_run_step_with_its_cwd_env_path_note_and_needs(resolve, tmp_path):
    rp = plan_of(resolve())
    wd = tmp_path / "wd"
    build_dir = wd / "src" / "demo_src" / "pkg"
    step = by_name(rp)["configure"]
    assert rp.context["build_dir"] == str(build_dir) and rp.context["src"] == str(wd / "src" / "demo_src")
    assert step.argv == ("cmake", f"-j{rp.jobs.jobs}", str(wd / "src" / "demo_src"), "--cuda")
    assert step.shell is None and step.action is None
    assert step.cwd == str(build_dir / "sub")  # relative to the build folder
    assert step.env["STEP_ENV"] == "on" and step.env["PLAIN"] == "plain"
    assert step.env["CMAKE_INSTALL_PREFIX"] is None and step.env["STEP_UNSET"] is None  # unset: recipe and step
    assert step.env["PATH"] == f"{wd}/bin:/opt/x:${{PATH}}"
    assert step.note == "configured for demo"
    assert step.needs == ("git", "nvcc", "cmake>=3.26")  # the recipe's first, each once, conditions evaluated
    assert not step.network and not step.installs and step.replaces == ()
    assert "PATH" not in by_name(rp)["install"].env  # only the step that asks for it


def test_needs_conditions_follow_the_options(resolve):
    step = by_name(plan_of(resolve({"demo.cuda_build": False})))["configure"]
    assert step.needs == ("git", "cmake>=3.26", "ninja", "nvcc")
    assert step.argv[-1] != "--cuda"


def test_an_absolute_cwd_and_a_shell_step(resolve, tmp_path):
    step = by_name(plan_of(resolve()))["install"]
    assert step.cwd == str(tmp_path / "wd" / "out") and step.shell == "make install" and step.argv is None


def test_installing_steps_replace_the_recipes_distributions_unless_they_say_otherwise(resolve):
    st = by_name(plan_of(resolve()))
    assert st["install"].installs and st["install"].replaces == ("demo-dist",)
    assert st["install-nothing-replaced"].installs and st["install-nothing-replaced"].replaces == ()
    assert not st["swap"].installs and st["swap"].replaces == ("other-dist",)
    assert st["configure"].replaces == ()


def test_step_when_false_is_left_out(resolve):
    names = [s.name for s in plan_of(resolve()).steps]
    assert "cpu-only" not in names
    assert "cpu-only" in [s.name for s in plan_of(resolve({"demo.cuda_build": False})).steps]


def test_a_gpu_step_without_a_gpu_is_left_out_with_a_warning(resolve):
    rp = plan_of(resolve())
    assert by_name(rp)["benchmark"].gpu and by_name(rp)["benchmark"].network
    assert not any("needs a GPU" in w for w in rp.warnings)
    rp = plan_of(resolve(), machine=fake_machine(gpus=()))
    assert "benchmark" not in by_name(rp)
    assert "demo:benchmark needs a GPU and none was found: the step is left out" in rp.warnings
    assert by_name(rp)["verify"].name == "verify"  # the steps after it are still there


def test_internal_actions_get_the_interpreter_and_the_protected_distributions(resolve):
    st = by_name(plan_of(resolve({"protected": ["torch", "triton"]})))
    assert st["guarded"].args == {"target": ["--no-build-isolation", "-e", "on"], "python": PY,
                                  "protected": ["torch", "triton"]}
    assert st["guarded-list"].args == {"target": ["-e", "."], "python": "/other/python",
                                       "protected": ["torch", "triton"]}  # the recipe's own python is kept
    assert st["drop"].args == {"files": ["requirements.txt", "requirements-build.txt"], "resolve": ["requirements.txt"],
                               "python": PY, "protected": ["torch", "triton"]}
    assert st["drop-list"].args == {"files": ["a.txt"], "python": PY, "protected": ["torch", "triton"]}
    assert st["verify"].args == {"module": "demo", "count": 3, "python": PY}
    assert st["keep"].args == {"dist": "torch", "expect": "2.8.0", "python": PY, "found": "2.8.0a0+git5228986"}
    assert st["keep-missing"].args == {"dist": "nothere", "expect": "", "python": PY, "found": None}


def test_a_step_provides_what_it_says_and_the_last_step_what_the_recipe_provides(resolve):
    rp = plan_of(resolve())
    assert by_name(rp)["guarded"].provides == ("torch",)
    assert rp.steps[-1].name == "collect" and rp.steps[-1].provides == ("uv",)
    rp = plan_of(resolve({"demo.mode": "index"}))  # no collect: the last recipe step gets it
    assert rp.steps[-1].name == "verify" and rp.steps[-1].provides == ("cxx", "uv")  # its own, then the recipe's
    assert [s.provides for s in rp.steps[:-1] if s.provides] == [("torch",)]


def test_collect_step_takes_every_pattern_into_the_wheelhouse(resolve, tmp_path):
    rp = plan_of(resolve())
    collect = by_name(rp)["collect"]
    assert collect.action == "collect" and collect.cwd == str(tmp_path / "wd" / "src" / "demo_src" / "pkg")
    assert collect.args == {"patterns": ["dist/*.whl", "extra/*.whl"], "dest": str(tmp_path / "wd" / "wheels")}


def test_no_checkout_when_the_source_condition_is_false(resolve, tmp_path):
    rp = plan_of(resolve({"demo.mode": "index"}))
    wd = str(tmp_path / "wd")
    assert rp.source_dir is None and rp.context["src"] == "" and rp.context["build_dir"] == wd
    names = [s.name for s in rp.steps]
    assert "fetch" not in names and "collect" not in names  # the artifacts condition is false too
    assert by_name(rp)["configure"].cwd == str(Path(wd) / "sub")
    assert by_name(rp)["configure"].argv[2] == ""


def test_a_recipe_without_source_or_steps_plans_nothing(resolve, tmp_path):
    rp = plan_of(resolve(), "bare")
    assert rp.steps == () and rp.source_dir is None and rp.warnings == ()
    assert rp.context["build_dir"] == str(tmp_path / "wd") and rp.context["src"] == ""


def test_warnings_whose_condition_holds_name_the_recipe(resolve):
    rp = plan_of(resolve())
    assert "demo: flag is on in demo" in rp.warnings and "demo: always shown" in rp.warnings
    assert not any("never shown" in w for w in rp.warnings)
    rp = plan_of(resolve({"demo.flag": "off"}))
    assert "demo: never shown" in rp.warnings and not any("flag is" in w for w in rp.warnings)


def test_an_option_named_like_a_built_in_placeholder_is_refused(resolve):
    with pytest.raises(ConfigError, match="option 'jobs' shadows a built-in placeholder; rename it") as err:
        plan_of(resolve(), "shadow")
    assert "shadow.toml" in str(err.value)


# --------------------------------------------------------------------------- settings that are not set


def test_an_empty_url_stops_the_plan_naming_how_to_set_it(resolve):
    with pytest.raises(ConfigError) as err:
        plan_of(resolve({"demo.url": ""}))
    assert str(err.value) == "setting demo.url is empty: the demo source has no public URL"
    assert err.value.hint == ("set it in invoke.yaml (rebuilt: {demo: {url: ...}}), --set demo.url=<git url> "
                              "or export INVOKE_REBUILT_DEMO_URL=<git url>")


def test_an_empty_ref_stops_the_plan(resolve):
    with pytest.raises(ConfigError) as err:
        plan_of(resolve({"demo.ref": ""}))
    assert str(err.value) == "setting demo.ref is empty" and err.value.hint == "give --ref or set it in the stack"


def test_a_dry_run_shows_placeholders_for_unset_settings(resolve):
    rp = plan_of(resolve({"demo.url": "", "demo.ref": ""}), placeholders=True)
    fetch = by_name(rp)["fetch"]
    assert fetch.args["url"] == "<demo.url: not set>" and fetch.args["ref"] == "<demo.ref: not set>"
    assert [key for key, _ in rp.unset] == ["demo.url", "demo.ref"]
    assert rp.unset[1] == ("demo.ref", "give --ref or set it in the stack")
    assert "setting demo.ref is not set: a real build stops here (give --ref or set it in the stack)" in rp.warnings
    assert any(w.startswith("setting demo.url is not set: a real build stops here (set it in invoke.yaml")
               for w in rp.warnings)
    rp = plan_of(resolve({"demo.ref": ""}), placeholders=True)
    assert fetch.args["url"] != by_name(rp)["fetch"].args["url"] == "https://git.example/demo.git"
    assert [key for key, _ in rp.unset] == ["demo.ref"]


def test_set_settings_leave_nothing_unset(resolve):
    rp = plan_of(resolve(), placeholders=True)
    assert rp.unset == () and not any("not set" in w for w in rp.warnings)


# --------------------------------------------------------------------------- patches


def test_patches_step_after_the_fetch_with_each_patchs_sha256(resolve, tmp_path):
    folder = tmp_path / "patches" / "demo"
    folder.mkdir(parents=True)
    (folder / "0002-b.patch").write_text("b\n")
    (folder / "0001-a.patch").write_text("a\n")
    rp = plan_of(resolve())
    assert [s.name for s in rp.steps[:3]] == ["fetch", "patches", "configure"]
    step = rp.steps[1]
    src = str(tmp_path / "wd" / "src" / "demo_src")
    assert step.action == "patches" and step.cwd == src and step.needs == ("git",) and step.title == "demo:patches"
    assert step.args == {"patches": [str(folder / "0001-a.patch"), str(folder / "0002-b.patch")], "dest": src,
                         "sha256": [sha256_file(folder / "0001-a.patch")[:12], sha256_file(folder / "0002-b.patch")[:12]]}
    assert "patches" not in by_name(plan_of(resolve({"demo.patches": False})))


# --------------------------------------------------------------------------- context


def test_every_built_in_placeholder(resolve, tmp_path, monkeypatch):
    monkeypatch.delenv("CONDA_PREFIX", raising=False)
    s = resolve({"ctx.version": "1.2.3", "nvshmem_dir": "/opt/nvshmem", "cuda": "12.8",
                 "torch_cuda_arch_list": "9.0a", "ccache.enabled": True})
    rp = plan_of(s, "ctx", machine=replace(fake_machine(nvshmem="/opt/env/nvidia/nvshmem"), cuda_cccl="/cccl"))
    wd = tmp_path / "wd"
    src = str(wd / "src" / "ctx")
    assert by_name(rp)["show"].argv == (
        "ctx", PY, "/opt/env/bin", "/opt/env", "/opt/env", str(rp.jobs.jobs), str(wd), str(wd / "wheels"), src, src,
        "/usr/local/cuda-12.9", "/usr/local/cuda-12.9/bin/nvcc", "12.8", "9.0a", "/opt/nvshmem",
        "/opt/env/nvidia/nvshmem", "/cccl", "3.11", "1.2.3", "1", "1", "1", "0")
    assert by_name(rp)["show"].cwd == src  # no subdir: the checkout itself


def test_placeholders_of_a_bare_machine(resolve, tmp_path, monkeypatch):
    monkeypatch.setenv("CONDA_PREFIX", "/opt/conda")
    py = replace(fake_machine().python, prefix=None)
    machine = replace(fake_machine(gpus=()), cuda_home=None, python=py)
    argv = by_name(plan_of(resolve(), "ctx", machine=machine))["show"].argv
    assert argv[3] == "/opt/env" and argv[4] == "/opt/conda"  # the prefix from the interpreter's path
    assert argv[10:17] == ("", "nvcc", "12.9", "9.0", "", "", "")
    assert argv[18:] == ("", "0", "0", "0", "0")


# --------------------------------------------------------------------------- jobs


def test_jobs_from_memory_per_job_times_nvcc_threads(resolve):
    rp = plan_of(resolve(), machine=fake_machine(cpus=64, mem=40.0))
    assert rp.jobs.jobs == 5  # 40 GiB / (2 GiB x 4 threads)
    assert "(2 GiB x 4 nvcc threads)" in rp.jobs.explanation
    rp = plan_of(resolve({"demo.threads": 1}), machine=fake_machine(cpus=64, mem=40.0))
    assert rp.jobs.jobs == 20 and "(2 GiB x 1 nvcc threads)" in rp.jobs.explanation


def test_jobs_of_a_recipe_without_nvcc_threads(resolve):
    rp = plan_of(resolve(), "ctx", machine=fake_machine(cpus=64, mem=40.0))
    assert rp.jobs.jobs == 20
    assert rp.jobs.explanation == "auto: min(64 CPUs, 40.0 GiB available / 2.0 GiB per job = 20) -> 20"


def test_an_explicit_job_count_over_the_memory_warns(resolve):
    rp = plan_of(resolve({"jobs": 32}), machine=fake_machine(cpus=64, mem=40.0))
    assert rp.jobs.jobs == 32 and rp.warnings[0].startswith("jobs=32 exceeds what memory allows (5:")


def test_what_came_from_the_job_count_is_marked(resolve):
    st = by_name(plan_of(resolve({"jobs": 7})))
    conf = st["configure"]
    assert conf.env["MAX_JOBS"] == "7"
    assert conf.jobs_env == {"MAX_JOBS": ("7", "{jobs}")}
    assert conf.jobs_command == f"cmake '-j{{jobs}}' {conf.argv[2]} --cuda"
    assert st["install"].jobs_command is None and st["install"].jobs_env == {"MAX_JOBS": ("7", "{jobs}")}


def test_the_stamp_inputs_leave_out_the_job_count_and_how_the_network_is_reached(resolve):
    a = plan_of(resolve({"jobs": 7}))
    b = plan_of(resolve({"jobs": 63}))
    assert a.inputs == b.inputs  # -j 7 and -j 63 build the same thing
    assert a.inputs["recipe"] == "demo"
    configure = [x for x in a.inputs["steps"] if x[0] == "configure"][0]
    assert configure[1] == f"cmake '-j{{jobs}}' {by_name(a)['configure'].argv[2]} --cuda"
    env = dict(configure[2])
    assert env["MAX_JOBS"] == "{jobs}" and env["PLAIN"] == "plain" and env["CMAKE_INSTALL_PREFIX"] == "None"
    assert env["SECRET_URL"] == "https://***@git.example/x"
    for name in ("http_proxy", "CCACHE_DIR", "CMAKE_CXX_COMPILER_LAUNCHER", "TORCH_NO_COMPILER_WRAPPER"):
        assert name not in env
    assert [k for k, _ in configure[2]] == sorted(env)
    assert [x[0] for x in a.inputs["steps"]] == [s.name for s in a.steps]
    assert a.inputs["options"]["mirror"] == "https://***@git.example/x" and a.inputs["options"]["threads"] == 4
    c = plan_of(resolve({"demo.flag": "off"}))
    assert c.inputs != a.inputs  # an option that reaches a command is an input


def test_transport_env_is_matched_by_name(resolve):
    assert plan_mod._transport("HTTP_PROXY") and plan_mod._transport("https_proxy")
    assert plan_mod._transport("No_Proxy") and plan_mod._transport("GIT_SSL_NO_VERIFY")
    assert plan_mod._transport("CCACHE_REMOTE_STORAGE") and plan_mod._transport("CMAKE_C_COMPILER_LAUNCHER")
    assert not plan_mod._transport("ccache_dir") and not plan_mod._transport("MAX_JOBS")
    assert not plan_mod._transport("XCCACHE_DIR") and not plan_mod._transport("COMPILER_LAUNCHER_X")


def test_a_feature_that_replaces_a_job_count_value_is_what_the_stamp_sees(resolve):
    pinned = features_mod.Feature("pin", env=lambda settings, recipe, step, ctx, workdir, machine: {"MAX_JOBS": "3"})
    a = plan_of(resolve({"jobs": 7}), features=(pinned,))
    b = plan_of(resolve({"jobs": 63}), features=(pinned,))
    env = dict([x for x in a.inputs["steps"] if x[0] == "configure"][0][2])
    assert env["MAX_JOBS"] == "3" and a.inputs == b.inputs


def test_features_add_env_and_warnings(resolve):
    """A feature sees the recipe, each step, the placeholders, the work dir and the machine."""
    def env(settings, recipe, step, ctx, workdir, machine):
        return {"FEATURE": f"{recipe.name} {step.name} {ctx['recipe']} {workdir} {machine.cpus}"}

    def warn(settings, recipe, steps, ctx, workdir, machine):
        return [f"{recipe.name}: {len(steps)} steps seen, {ctx['recipe']} {workdir} {machine.cpus}"]

    rp = plan_of(resolve(), features=(features_mod.Feature("f", env=env, warnings=warn),),
                 machine=fake_machine(cpus=12))
    wd = resolve().workdir()
    assert all(s.env["FEATURE"] == f"demo {s.name} demo {wd} 12" for s in rp.steps)
    assert rp.warnings[-1] == f"demo: {len(rp.steps)} steps seen, demo {wd} 12"


# --------------------------------------------------------------------------- the whole plan


def test_make_plans_each_recipe_in_the_order_given(resolve, tmp_path):
    s = resolve()
    plan = plan_mod.make(s, [recipes_mod.get("bare"), recipes_mod.get("demo")], fake_machine(), tmp_path / "wd",
                         features=())
    assert [rp.recipe.name for rp in plan.recipes] == ["bare", "demo"]
    assert plan.stack == s.stack.name == "sglang-0.5.4" and plan.python == PY and plan.workdir == str(tmp_path / "wd")
    assert plan.python_why == s.target().why and plan.python_why
    assert plan.steps == list(plan.recipes[1].steps)
    assert plan.warnings == list(plan.recipes[1].warnings)


def test_make_passes_placeholders_and_features_on(resolve, tmp_path):
    s = resolve({"demo.url": ""})
    with pytest.raises(ConfigError):
        plan_mod.make(s, [recipes_mod.get("demo")], fake_machine(), tmp_path / "wd", features=())
    plan = plan_mod.make(s, [recipes_mod.get("demo")], fake_machine(), tmp_path / "wd", placeholders=True, features=())
    assert plan.recipes[0].unset and all("PIP_CONSTRAINT" not in step.env for step in plan.steps)
    plan = plan_mod.make(resolve(), [recipes_mod.get("demo")], fake_machine(), tmp_path / "wd")  # every feature
    assert "PIP_CONSTRAINT" in by_name(plan.recipes[0])["install"].env


# --------------------------------------------------------------------------- mistakes in a recipe, named


BROKEN = '''
[recipe]
name = "broken"
summary = "one mistake, put where each test says"
{recipe_extra}
[source]
url = "https://git.example/broken.git"
ref = "v1"
{source_extra}
[options]
flag = true

[env]
{env_extra}

[[steps]]
name = "s"
run = ["x"]
{step_extra}

[artifacts]
wheels = ["dist/*.whl"]
{artifacts_extra}

{warnings_extra}
'''


@pytest.mark.parametrize(("where", "line", "message"), [
    ("env_extra", 'X = "{nope}"', "{path} env X: unknown placeholder {{nope}}"),
    ("step_extra", 'env = {Y = "{nope}"}', "{path} env Y: unknown placeholder {{nope}}"),
    ("step_extra", 'path_prepend = ["{nope}"]', "{path} step s: unknown placeholder {{nope}}"),
    ("step_extra", 'cwd = "{nope}"', "{path} step s: unknown placeholder {{nope}}"),
    ("step_extra", 'with = {a = "{nope}"}', "{path} step s: unknown placeholder {{nope}}"),
    ("step_extra", 'note = "{nope}"', "{path} step s: unknown placeholder {{nope}}"),
    ("source_extra", 'when = "nope"', "{path}: condition 'nope' names unknown 'nope'"),
    ("artifacts_extra", 'when = "nope"', "{path}: condition 'nope' names unknown 'nope'"),
    ("warnings_extra", '[[warnings]]\nwhen = "nope"\ntext = "x"', "{path} warning: condition 'nope' names unknown 'nope'"),
])
def test_a_mistake_in_a_recipe_names_the_file_and_the_step(resolve, tmp_path, where, line, message):
    fields = dict.fromkeys(("recipe_extra", "source_extra", "env_extra", "step_extra", "artifacts_extra",
                            "warnings_extra"), "")
    fields[where] = line
    path = tmp_path / "recipes" / "broken.toml"
    path.write_text(BROKEN.format(**fields))
    with pytest.raises(ConfigError) as err:
        plan_of(resolve(), "broken")
    assert str(err.value).startswith(message.format(path=path)), str(err.value)


@pytest.mark.parametrize("step", ['run = ["{nope}"]', 'shell = "{nope}"'])
def test_a_mistake_in_a_command_names_the_file_and_the_step(resolve, tmp_path, step):
    path = tmp_path / "recipes" / "broken.toml"
    path.write_text(BROKEN.format(recipe_extra="", source_extra="", env_extra="", step_extra="", artifacts_extra="",
                                  warnings_extra="").replace('run = ["x"]', step))
    with pytest.raises(ConfigError) as err:
        plan_of(resolve(), "broken")
    assert str(err.value).startswith(f"{path} step s: unknown placeholder {{nope}}"), str(err.value)


def test_a_need_table_without_a_condition_is_always_needed(resolve, tmp_path):
    path = tmp_path / "recipes" / "broken.toml"
    path.write_text(BROKEN.format(recipe_extra='needs = [{need = "make"}]', source_extra="", env_extra="",
                                  step_extra='needs = [{need = "cmake", when = "flag"}, {need = "git"}]',
                                  artifacts_extra="", warnings_extra=""))
    step = by_name(plan_of(resolve(), "broken"))["s"]
    assert step.needs == ("make", "cmake", "git")
