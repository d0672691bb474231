"""Bench specs: loading, validation messages, and the pure expansion into commands."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from rebuilt.errors import ConfigError
from rebuilt.tools.bench import spec as bspec

ROOT = Path(__file__).resolve().parents[2]
PY = "/opt/envs/sgl/bin/python"


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def expand(s, **kw):
    kw.setdefault("python", PY)
    kw.setdefault("model_path", "/models/Llama-3.1-8B-Instruct")
    kw.setdefault("out_dir", "/runs/r1")
    return bspec.expand(s, **kw)


def test_default_spec_reproduces_the_hand_run_command():
    s = bspec.load(bspec.find("one-batch-default"))
    cmds = expand(s, cuda_visible_devices="1")
    assert len(cmds) == s.repeats == 3
    first = cmds[0]
    hand_run = ("-m sglang.bench_one_batch --model-path /models/Llama-3.1-8B-Instruct --batch-size 64 "
            "--input-len 512 --mem-fraction-static 0.6 --disable-cuda-graph").split()
    assert list(first.argv[: 1 + len(hand_run)]) == [PY, *hand_run]
    assert list(first.argv[1 + len(hand_run):]) == [
        "--run-name", "one-batch-default.bs64-il512-ol16.r1",
        "--result-filename", "/runs/r1/bs64-il512-ol16/r1/result.jsonl"]
    assert first.env == {"CUDA_VISIBLE_DEVICES": "1"}
    assert first.cwd == "/runs/r1/bs64-il512-ol16/r1"
    assert [c.repeat for c in cmds] == [1, 2, 3]
    assert len({c.result_file for c in cmds}) == 3  # repeats never share a result file
    assert first.cases[0].params == {"batch_size": 64, "input_len": 512, "output_len": 16}


def test_every_shipped_spec_loads_and_expands():
    names = sorted(p.stem for p in (ROOT / "bench" / "specs").glob("*.toml"))
    assert {"one-batch-default", "serving-random-ids"} <= set(names)
    for name in names:
        s = bspec.load(bspec.find(name))
        assert expand(s), name


def test_commands_are_repeat_major_one_process_per_case_and_repeat(tmp_path):
    s = bspec.load(write(tmp_path, "repeats = 2\n[matrix]\nbatch_size = [1, 8]\ninput_len = [128]\n"))
    labels = [c.label for c in expand(s)]
    assert labels == ["bs1-il128-ol16 r1", "bs8-il128-ol16 r1", "bs1-il128-ol16 r2", "bs8-il128-ol16 r2"]


def test_per_repeat_passes_the_matrix_as_lists(tmp_path):
    s = bspec.load(write(tmp_path, 'process = "per-repeat"\nrepeats = 2\n'
                                   "[matrix]\nbatch_size = [1, 8, 64]\noutput_len = [1, 4]\n"))
    cmds = expand(s)
    assert len(cmds) == 2
    argv = list(cmds[0].argv)
    i = argv.index("--batch-size")
    assert argv[i:i + 4] == ["--batch-size", "1", "8", "64"]
    j = argv.index("--output-len")
    assert argv[j:j + 3] == ["--output-len", "1", "4"]
    assert "--input-len" not in argv  # left to upstream's default
    assert len(cmds[0].cases) == 6 and cmds[0].cwd.endswith("/all/r1")


def test_server_flags_keep_order_and_types(tmp_path):
    s = bspec.load(write(tmp_path, "[matrix]\nbatch_size = [2]\n[server]\n"
                                   'tp = 2\nmem_fraction_static = 0.55\ndisable-cuda-graph = false\n'
                                   'attention-backend = "fa3"\ncuda-graph-bs = [1, 2]\n'))
    argv = list(expand(s)[0].argv)
    i = argv.index("--tp")
    assert argv[i:i + 9] == ["--tp", "2", "--mem-fraction-static", "0.55", "--attention-backend", "fa3",
                             "--cuda-graph-bs", "1", "2"]
    assert "--disable-cuda-graph" not in argv


def test_wrappers_nsys_and_torch_profile(tmp_path):
    s = bspec.load(write(tmp_path, "[matrix]\nbatch_size = [4]\n[wrappers.nsys]\nenabled = true\n"
                                   "[wrappers.torch_profile]\nenabled = true\n"))
    c = expand(s)[0]
    assert list(c.argv[:7]) == ["nsys", "profile", "--trace=cuda", "--sample=process-tree",
                                "--cudabacktrace=kernel:0", "-o", c.cwd + "/nsys-report"]
    assert c.argv[7] == PY and c.argv[-1] == "--profile"


def test_serving_commands(tmp_path):
    s = bspec.load(bspec.find("serving-random-ids"))
    cmds = expand(s, base_url="http://10.0.0.5:31000")
    assert len(cmds) == len(s.cases()) * s.repeats
    argv = list(cmds[0].argv)
    assert argv[:3] == [PY, "-m", "sglang.bench_serving"]
    for flag, value in [("--base-url", "http://10.0.0.5:31000"), ("--dataset-name", "random-ids"),
                        ("--request-rate", "inf"), ("--max-concurrency", "1"), ("--backend", "sglang"),
                        ("--output-file", cmds[0].result_file), ("--model", "/models/Llama-3.1-8B-Instruct")]:
        assert argv[argv.index(flag) + 1] == value, flag
    assert cmds[0].cases[0].params["request_rate"] == math.inf
    assert cmds[0].cases[0].id == "rateinf-conc1-n200-in512-out128"
    srv = bspec.server_command(s, python=PY, model_path="/m", base_url="http://10.0.0.5:31000")
    assert list(srv.argv) == [PY, "-m", "sglang.launch_server", "--model-path", "/m",
                              "--mem-fraction-static", "0.8", "--host", "10.0.0.5", "--port", "31000"]


def test_cases_override_and_repeats():
    s = bspec.load(bspec.find("one-batch-default"))
    o = bspec.override(s, cases="bs=1,8;ol=1", repeats=1)
    assert o.matrix == {"batch_size": (1, 8), "input_len": (512,), "output_len": (1,)}
    assert [c.id for c in o.cases()] == ["bs1-il512-ol1", "bs8-il512-ol1"]
    assert o.repeats == 1
    with pytest.raises(ConfigError, match="--cases: matrix.bz: unknown key") as err:
        bspec.override(s, cases="bz=4")
    assert "bs" in err.value.hint.split(": ", 1)[1].split(", ")
    with pytest.raises(ConfigError, match="not a number"):
        bspec.override(s, cases="bs=four")
    with pytest.raises(ConfigError, match="positive"):
        bspec.override(s, cases="bs=0")


def test_malformed_toml_names_file_and_line(tmp_path):
    p = write(tmp_path, 'kind = "one_batch"\n[matrix]\nbatch_size = [1, 2\ninput_len = 3\n')
    with pytest.raises(ConfigError) as err:
        bspec.load(p)
    assert str(err.value).startswith(f"{p}:4:")
    assert "malformed TOML" in str(err.value)


@pytest.mark.parametrize("text, where, hint", [
    ("repeat = 3\n", ":1", "did you mean 'repeats'?"),
    ("kind = 'one_batch'\n[matrix]\nbatch_sizes = [1]\n", ":3", "did you mean 'batch_size'?"),
    ("[wrappers.nsys]\nenable = true\n", ":2", "did you mean 'enabled'?"),
    ("kind = 'onebatch'\n", ":1", "did you mean 'one_batch'?"),
])
def test_unknown_keys_get_did_you_mean_and_line(tmp_path, text, where, hint):
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        bspec.load(p)
    assert str(err.value).startswith(f"{p}{where}:")
    assert str(err.value).endswith(f"({hint})")  # one style for every TOML file: the did-you-mean in the message


@pytest.mark.parametrize("text, match", [
    ("[server]\nmodel-path = '/data/models/x'\n", "may not be set"),
    ("[server]\nbatch-size = 4\n", "belongs in \\[matrix\\]"),
    ("[server]\nresult-filename = 'x.jsonl'\n", "may not be set"),
    ("repeats = 0\n", "repeats: must be"),
    ("kind = 'serving'\nprocess = 'per-repeat'\n", "one case per process"),
    ("kind = 'serving'\n[wrappers.nsys]\nenabled = true\n", "nsys cannot wrap"),
    ("[client]\nbackend = 'sglang'\n", "for serving specs"),
    ("[matrix]\nbatch_size = [1.5]\n", "whole numbers"),
    ("schema_version = 2\n", "schema_version 2"),
    # a value of the wrong type: one message naming the line and the key, never a traceback
    ("kind = 'serving'\nrepeats = '3'\n", r"s.toml:2: repeats: must be a whole number, got '3'"),
    ("env = 5\n", r"s.toml:1: env: must be an object"),
    ("[env]\nA = 1\n", r"s.toml:2: env.A: must be text, got 1"),
    ("[server]\nx = {a = 1}\n", r"s.toml:2: server.x: must be text or a number"),
    ("[matrix]\nbs = 'abc'\n", r"s.toml:2: matrix.bs: must be a number or a list"),
    ("kind = 'serving'\nprofile = 5\n", r"s.toml:2: profile: must be text, got 5"),
    ("[wrappers]\nnsys = 1\n", r"s.toml:2: wrappers.nsys: must be an object"),
])
def test_invalid_specs(tmp_path, text, match):
    with pytest.raises(ConfigError, match=match):
        bspec.load(write(tmp_path, text))


def test_model_path_and_python_come_from_the_caller():
    s = bspec.load(bspec.find("one-batch-default"))
    with pytest.raises(ConfigError, match="absolute path"):
        expand(s, python="python3")
    with pytest.raises(ConfigError, match="no model path"):
        expand(s, model_path="")


def test_find_by_name_suggests_close_names():
    with pytest.raises(ConfigError) as err:
        bspec.find("one-batch-defualt")
    assert err.value.hint == "did you mean 'one-batch-default'?"
