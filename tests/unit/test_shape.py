"""Declared shapes (core/shape), TOML files (core/tomlfile) and read_json (core/fs): one message style for all."""

from __future__ import annotations

import json

import pytest

from rebuilt.core import shape as S
from rebuilt.core import tomlfile
from rebuilt.core.fs import read_json, write_json
from rebuilt.errors import ConfigError, InputError

ROLE = S.Obj({"module": S.opt(S.STR), "port": S.either(S.INT, S.STR), "gpus": S.opt(S.STR)}, closed=True,
             docs="docs/SERVE.md")
PROFILE = S.Obj({"profile": S.opt(S.Obj({"entry": S.opt(S.STR)}, closed=True)), "roles": S.MapOf(ROLE),
                 "steps": S.opt(S.ListOf(S.Obj({"name": S.STR, "run": S.opt(S.ListOf(S.STR))}, closed=True)))},
                closed=True)
TEXT = """\
# a comment
[profile]
entry = "server"

[roles.server]
module = "m"
port = 30000
gpus = "0"

[roles."with.dot"]
port = 1

[[steps]]
name = "a"

[[steps]]
name = "b"
run = ["x"]
"""


def check(text: str):
    return tomlfile.parse(text, "p.toml").check(PROFILE, hint="see the shipped ones")


def test_a_valid_file_passes_unchanged():
    assert check(TEXT)["roles"]["server"]["port"] == 30000


@pytest.mark.parametrize("old,new,message", [
    ('gpus = "0"', "gpus = [0, 1]", r"^p.toml:8: roles.server.gpus: must be text, got \[0, 1\]$"),
    ("port = 30000", "port = true", r"^p.toml:7: roles.server.port: must be a whole number or text, got True$"),
    ("port = 30000", "prot = 30000", r"^p.toml:7: roles.server.prot: unknown key \(did you mean 'port'\?\)$"),
    ("port = 1\n", "", r"^p.toml:10: roles.'with.dot'.port: missing \(it must be a whole number or text\)$"),
    ('run = ["x"]', 'run = ["x", 5]', r"^p.toml:18: steps\[1\].run\[1\]: must be text, got 5$"),
    ('name = "b"', "nme = 'b'", r"^p.toml:17: steps\[1\].nme: unknown key \(did you mean 'name'\?\)$"),
    ('entry = "server"', "entry = 5", r"^p.toml:3: profile.entry: must be text, got 5$"),
    ('[profile]\nentry = "server"\n', "profile = 5\n", r"^p.toml:2: profile: must be an object \(a table\), got 5$"),
])
def test_every_mistake_names_file_line_and_key(old, new, message):
    with pytest.raises(ConfigError, match=message) as err:
        check(TEXT.replace(old, new, 1))
    assert "Traceback" not in err.value.render()


def test_unknown_keys_have_one_hint_style():
    with pytest.raises(ConfigError) as err:
        check(TEXT.replace("port = 30000", "prot = 30000"))
    assert err.value.hint == "known keys in roles.server: module, port, gpus (docs/SERVE.md)"
    with pytest.raises(ConfigError) as err:
        check("rols = 1\n" + TEXT)
    assert str(err.value) == "p.toml:1: rols: unknown key (did you mean 'roles'?)"
    assert err.value.hint == "known keys at the top level: profile, roles, steps"


def test_a_wrong_type_takes_the_callers_hint():
    with pytest.raises(ConfigError) as err:
        check(TEXT.replace('gpus = "0"', "gpus = 0"))
    assert err.value.hint == "see the shipped ones"


def test_malformed_toml_names_file_line_and_column(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[a]\nb = "x\n')
    with pytest.raises(ConfigError, match=rf"^{path}:2:\d+: malformed TOML: "):
        tomlfile.load(path)
    with pytest.raises(ConfigError, match=rf"^{tmp_path / 'none.toml'}: cannot read recipe: "):
        tomlfile.load(tmp_path / "none.toml", "recipe")


def test_line_of_finds_dotted_and_inline_keys():
    text = 'a.b = 1\n[t]\nx = { y = 2 }\n[[arr]]\nk = 1\n[[arr]]\nk = 2\n[arr.sub]\nz = 3\n'
    assert tomlfile.line_of(text, ("a", "b")) == 1
    assert tomlfile.line_of(text, ("t", "x", "y")) == 3
    assert tomlfile.line_of(text, ("arr", 1, "k")) == 7
    assert tomlfile.line_of(text, ("arr", 1, "sub", "z")) == 9
    assert tomlfile.line_of(text, ("arr", 0)) == 4
    assert tomlfile.line_of(text, ("nothing",)) is None


SHAPE = S.Obj({"roles": S.MapOf(S.Obj({"pid": S.INT}))})


@pytest.mark.parametrize("content,message", [
    ("[]", r"state.json: must hold an object \(a table\) at the top level, got \[\]$"),
    ('{"roles": []}', r"state.json: roles: must be an object \(a table\), got \[\]$"),
    ('{"roles": {"server": {}}}', r"state.json: roles.server.pid: missing \(it must be a whole number\)$"),
    ('{"roles": {"server": {"pid": "12"}}}', r"state.json: roles.server.pid: must be a whole number, got '12'$"),
    ('{"roles": ', r"state.json:1: not valid JSON \(Expecting value\)$"),
    (b"\xff\xfe", r"state.json: cannot read state file: "),
])
def test_read_json_refuses_what_does_not_have_its_shape(tmp_path, content, message):
    path = tmp_path / "state.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(InputError, match=message) as err:
        read_json(path, SHAPE, missing={}, what="state file", hint="remove it")
    assert err.value.exit_code == 2 and err.value.hint == "remove it"


def test_read_json_missing_file_is_the_default_only_when_one_is_given(tmp_path):
    assert read_json(tmp_path / "none.json", SHAPE, missing=None) is None
    with pytest.raises(InputError, match="none.json: the bench run does not exist"):
        read_json(tmp_path / "none.json", SHAPE, what="bench run")


def test_read_json_reads_back_what_write_json_wrote(tmp_path):
    data = {"roles": {"server": {"pid": 12}}}
    assert read_json(write_json(tmp_path / "s.json", data), SHAPE) == data
    assert json.loads((tmp_path / "s.json").read_text()) == data
