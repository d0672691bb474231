"""Serving profiles: validation (file, line, key), placeholders from settings, the shipped profiles, redaction."""

from __future__ import annotations

from pathlib import Path

import pytest

from rebuilt.core import secret as secrets
from rebuilt.errors import ConfigError
from rebuilt.tools.serve import profile as prof
from rebuilt.tools.serve.lifecycle import dry_run_text
from rebuilt.tools.serve.resolve import resolve

SECRET = "pw-0f-redis"
GOOD = """\
[profile]
summary = "two roles"
entry = "router"

[roles.server]
module = "sglang.launch_server"
port = "{serve.port}"
gpus = "{serve.gpus}"
flags = ["--model-path", "{serve.model_path}", "--port", "{port}",
         { args = ["--served-model-name", "{serve.served_model_name}"], when = "served_model_name != ''" },
         "{serve.extra_flags}"]

[roles.server.env]
MOONCAKE_META_SERVER_PASSWORD = "{serve.mooncake.password}"
MOONCAKE_META_SERVER_URL = "{serve.mooncake.url}"
PYTHONPATH = "{workdir}/src/sglang/python:${PYTHONPATH}"

[roles.router]
module = "sglang_router.launch_router"
port = 8000
after = ["server"]
flags = ["--pd-disaggregation", "--decode", "{role.server.url}", "--dist", "{host_ip}:6676", "{python}"]
ready = ["/v1/models"]
"""


def write(tmp_path: Path, text: str, name: str = "p.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def load(tmp_path, text):
    path = write(tmp_path, text)
    return prof.parse(path.read_text(), path)


@pytest.fixture
def settings(resolve):
    env = {"INVOKE_REBUILT_SERVE_MOONCAKE_PASSWORD": SECRET,
           "INVOKE_REBUILT_SERVE_MOONCAKE_URL": f"redis://:{SECRET}@10.9.8.7:6379"}
    return lambda **flags: resolve({"serve.model_path": "/models/m", "serve.host_ip": "10.1.2.3", **flags},
                                   environ=env)


def test_a_profile_resolves_with_settings_and_builtins(tmp_path, settings):
    p = load(tmp_path, GOOD)
    res = resolve(p, settings(**{"serve.gpus": "0,1", "serve.served_model_name": "m1",
                                      "serve.extra_flags": "--tp,2"}), python="/env/bin/python", workdir="/w")
    server, router = res.roles
    assert [r.name for r in res.roles] == ["server", "router"]
    assert server.argv == ("/env/bin/python", "-m", "sglang.launch_server", "--model-path", "/models/m",
                           "--port", "30000", "--served-model-name", "m1", "--tp", "2")
    assert server.env["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert server.env["PYTHONPATH"] == "/w/src/sglang/python:${PYTHONPATH}"  # expanded when started
    assert server.env["MOONCAKE_META_SERVER_PASSWORD"] == SECRET  # the real value reaches the program
    assert router.argv[3:] == ("--pd-disaggregation", "--decode", "http://127.0.0.1:30000", "--dist",
                               "10.1.2.3:6676", "/env/bin/python")
    assert router.port == 8000 and router.ready == ("/v1/models",) and router.health == "/health"
    assert server.ready == ("/v1/models", "/get_model_info")
    assert res.model == "m1"


def test_conditional_flags_and_empty_gpus_leave_things_out(tmp_path, settings):
    res = resolve(load(tmp_path, GOOD), settings(), python="/p", workdir="/w")
    server = res.role("server")
    assert "--served-model-name" not in server.argv and "CUDA_VISIBLE_DEVICES" not in server.env
    assert res.model == "/models/m"  # sglang serves the model under its path by default


def test_secrets_are_redacted_in_descriptions_and_dry_runs(tmp_path, settings):
    res = resolve(load(tmp_path, GOOD), settings(), python="/p", workdir="/w")
    described = res.describe()
    env = described["roles"]["server"]["env"]
    assert env["MOONCAKE_META_SERVER_PASSWORD"] == "***"
    assert env["MOONCAKE_META_SERVER_URL"] == "redis://***@10.9.8.7:6379"
    text = dry_run_text(res)
    assert SECRET not in text and SECRET not in str(described)
    assert res.redactor(f"connecting with password {SECRET}") == "connecting with password ***"


CYCLE = ('[roles.extra]\nmodule = "m"\nport = 1\nafter = ["extra2"]\n'
         '[roles.extra2]\nmodule = "m"\nport = 2\nafter = ["extra"]\n')


@pytest.mark.parametrize("text,message", [
    (GOOD.replace('port = 8000', 'prot = 8000'),
     r"p.toml:\d+: roles.router.prot: unknown key \(did you mean 'port'\?\)"),
    (GOOD.replace('port = 8000\n', ''), r"p.toml:18: roles.router.port: missing \(it must be a whole number or text\)"),
    (GOOD.replace('after = ["server"]', 'after = ["sever"]'),
     r":\d+: roles.router.after: no other role named 'sever' \(did you mean 'server'\?\)"),
    (GOOD.replace('"{serve.mooncake.password}"', '"hunter2"'),
     r":14: roles.server.env.MOONCAKE_META_SERVER_PASSWORD: a secret is never written"),
    (GOOD.replace('module = "sglang_router.launch_router"', 'command = ["x"]\nmodule = "y"'), r"exactly one of module"),
    (GOOD.replace('entry = "router"', 'entry = "ruoter"'), r":3: profile.entry: no role named 'ruoter'"),
    (GOOD + CYCLE, r"roles wait for each other: extra -> extra2 -> extra"),
    ("[roles]\n", r"at least one role"),
    (GOOD.replace("[profile]", "[profil]"), r"p.toml:1: profil: unknown key \(did you mean 'profile'\?\)"),
    (GOOD.replace("ready = [", "ready = 3\nx = ["), r"unknown key"),
    (GOOD.replace("port = 8000", "port = 8000\nports = 9"), r":\d+: roles.router.ports: must be a list, each a whole"),
    # values of the wrong type: refused before anything runs, named with their line
    (GOOD.replace('gpus = "{serve.gpus}"', "gpus = [0, 1]"), r"p.toml:8: roles.server.gpus: must be text or a whole"),
    (GOOD.replace('ready = ["/v1/models"]', 'health = ["/h"]'), r"p.toml:23: roles.router.health: must be text"),
    (GOOD.replace("port = 8000", "port = 8000\naddress = 5"), r"p.toml:21: roles.router.address: must be text"),
    (GOOD.replace("port = 8000", "port = 8000\ncwd = 5"), r"p.toml:21: roles.router.cwd: must be text, got 5"),
    (GOOD.replace('entry = "router"', "entry = 5"), r"p.toml:3: profile.entry: must be text, got 5"),
    (GOOD.replace('[profile]\nsummary = "two roles"\nentry = "router"', "profile = 5"),
     r"p.toml:1: profile: must be an object \(a table\), got 5"),
    ("roles = 5\n", r"p.toml:1: roles: must be an object"),
])
def test_mistakes_name_file_line_and_key(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, text)


def test_resolution_errors_name_the_placeholder_and_port(tmp_path, settings):
    p = load(tmp_path, GOOD.replace('"{serve.port}"', '"{serve.prot}"'))
    with pytest.raises(ConfigError, match=r"p.toml:\d+: roles.server.port: unknown placeholder \{serve.prot\}"):
        resolve(p, settings(), python="/p", workdir="/w")
    p = load(tmp_path, GOOD.replace("port = 8000", 'port = "80x"'))
    with pytest.raises(ConfigError, match=r"'80x' is not a port number"):
        resolve(p, settings(), python="/p", workdir="/w")


def test_only_one_role(tmp_path, settings):
    res = resolve(load(tmp_path, GOOD), settings(), python="/p", workdir="/w", only="router")
    assert [r.name for r in res.roles] == ["router"]
    assert "http://127.0.0.1:30000" in res.roles[0].argv  # other roles' URLs are still known
    with pytest.raises(ConfigError, match="has no role 'deocde'"):
        resolve(load(tmp_path, GOOD), settings(), python="/p", workdir="/w", only="deocde")


def test_the_shipped_profiles_load_and_resolve(settings):
    s = settings(**{"serve.draft_model_path": "/models/nextn"})
    assert {"single", "pd", "aiak"} <= set(prof.names())
    single = resolve(prof.load("single"), s, python="/p", workdir="/w")
    assert single.roles[0].argv[:5] == ("/p", "-m", "sglang.launch_server", "--model-path", "/models/m")

    pd = resolve(prof.load("pd"), s, python="/p", workdir="/w")
    prefill, decode, router = pd.roles
    assert prefill.argv[prefill.argv.index("--disaggregation-mode") + 1] == "prefill"
    assert decode.argv[decode.argv.index("--disaggregation-mode") + 1] == "decode"
    assert "--disaggregation-bootstrap-port" in prefill.argv and "--disaggregation-ib-device" not in prefill.argv
    assert router.argv[2] == "sglang_router.launch_router" and router.after == ("prefill", "decode")
    assert prefill.ports == (8998, 6676) and decode.ports == (6677,) and router.ports == (29000,)
    i = router.argv.index("--prefill")
    assert router.argv[i + 1: i + 3] == ("http://127.0.0.1:30000", "8998")
    assert pd.profile.entry == "router"

    aiak = resolve(prof.load("aiak"), s, python="/p", workdir="/w")
    pre, dec = aiak.roles
    assert pre.argv[pre.argv.index("--kv-role") + 1] == "kv_producer"
    assert dec.argv[dec.argv.index("--kv-role") + 1] == "kv_consumer"
    assert pre.argv[pre.argv.index("--dist-init-addr") + 1] == "10.1.2.3:6676"
    assert pre.argv[pre.argv.index("--speculative-draft") + 1] == "/models/nextn"
    assert pre.env["PD_SEPARATE_STAGE"] == "prefill" and dec.env["PD_SEPARATE_STAGE"] == "decode"
    assert len(pre.env) >= 30 and len(dec.env) >= 60
    assert pre.env["MOONCAKE_META_SERVER_URL"] == f"redis://:{SECRET}@10.9.8.7:6379"
    text = dry_run_text(aiak)
    assert SECRET not in text and "10.9.8.7" in text


def test_the_shipped_profiles_hold_no_address_or_password():
    for path in (Path(prof.__file__).resolve().parents[2] / "recipes" / "serve").glob("*.toml"):
        text = path.read_text()
        assert "redis://" not in text.replace("redis://host", "")
        for line in text.splitlines():
            if "=" in line and not line.startswith("#") and secrets.secret_env(line.split("=")[0].strip()):
                assert "{serve." in line, f"{path.name}: {line}"


def test_secret_names_and_values():
    assert secrets.secret_env("MOONCAKE_META_SERVER_PASSWORD") and secrets.secret_env("HF_TOKEN")
    assert not secrets.secret_env("USE_SPEEDGATE_REQ_TO_TOKEN_POOL")
    assert not secrets.secret_env("SET_DEEP_DP_MAX_TOKENS")
    assert secrets.secret_key("serve.mooncake.password") and not secrets.secret_key("serve.port")
    r = secrets.from_settings([("serve.mooncake.url", "redis://u:tok3n@h:1"), ("serve.port", 1)])
    assert r("x tok3n y redis://u:tok3n@h:1") == "x *** y redis://***@h:1"
    assert r.env({"A_TOKEN": "abc", "B": "tok3n", "C": None}) == {"A_TOKEN": "***", "B": "***", "C": None}


@pytest.mark.parametrize("host,url", [("0.0.0.0", "http://127.0.0.1:30000"), ("10.1.2.3", "http://10.1.2.3:30000")])
def test_roles_are_reached_where_they_listen(tmp_path, settings, host, url):
    res = resolve(load(tmp_path, GOOD), settings(**{"serve.host": host}), python="/p", workdir="/w")
    assert res.role("server").url == url
    assert url in res.role("router").argv  # the router's --decode
