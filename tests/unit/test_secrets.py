"""Secret settings: typed, printed redacted, never from the command line; redaction of URLs and known values."""

from __future__ import annotations

import json

import pytest

from rebuilt.core import secret
from rebuilt.core import settings as settings_mod
from rebuilt.core.text import forget_secrets, redact
from rebuilt.errors import ConfigError


@pytest.fixture(autouse=True)
def _clean_registry():
    forget_secrets()
    yield
    forget_secrets()


@pytest.mark.parametrize("text, shown", [
    ("http://alice:p@ss@127.0.0.1:9/x", "http://***@127.0.0.1:9/x"),
    ("http://alice:s3cr3tpw@127.0.0.1:9", "http://***@127.0.0.1:9"),
    ("https://ghp_token@github.com/a/b.git", "https://***@github.com/a/b.git"),
    ("alice:s3cr3tpw@127.0.0.1:9", "***@127.0.0.1:9"),
    ("export https_proxy=alice:pa@ss@10.0.0.1:3128 done", "export https_proxy=***@10.0.0.1:3128 done"),
    ("git@github.com:a/b.git", "git@github.com:a/b.git"),
    ("write to bob@example.com", "write to bob@example.com"),
])
def test_redact_masks_the_whole_userinfo(text, shown):
    assert redact(text) == shown


def test_known_secret_values_are_masked_in_any_text():
    s = secret.Secret("http://bob:p@ss-w0rd@proxy:3128", "url")
    assert redact("password is p@ss-w0rd; encoded p%40ss-w0rd") == "password is ***; encoded ***"
    tok = secret.Secret("tok-123456")
    assert redact("Authorization: Bearer tok-123456") == "Authorization: Bearer ***"
    assert s.reveal() == "http://bob:p@ss-w0rd@proxy:3128" and tok.reveal() == "tok-123456"


def test_secret_prints_redacted_but_works_as_the_value():
    s = secret.Secret("http://bob:pw-9876@proxy:3128", "url")
    for shown in (str(s), repr(s), f"{s}", "%s" % s, "{}".format(s), str([s])):  # noqa: UP031, UP032
        assert "pw-9876" not in shown and "***@proxy:3128" in shown
    assert s == "http://bob:pw-9876@proxy:3128" and s.startswith("http://bob")
    import urllib.parse

    assert urllib.parse.urlsplit(s).password == "pw-9876"
    assert str(secret.Secret("x-token")) == "***" and "x-token" not in repr(secret.Secret("x-token"))


@pytest.mark.parametrize("key, kind", [
    ("proxy.url", "url"), ("speedgate.url", "url"), ("sglang.url", "url"), ("ccache.remote", "url"),
    ("serve.password", "value"), ("hub.token", "value"), ("serve.api_key", "value"),
    ("jobs", None), ("proxy.no_proxy", None), ("sglang.ref", None),
])
def test_which_settings_are_secret(key, kind):
    assert secret.kind_of(key) == kind


def test_resolved_credentials_are_secret_and_redacted_everywhere(resolve):
    s = resolve(environ={"INVOKE_REBUILT_PROXY_URL": "http://u:pw@x-1234@127.0.0.1:9",
                         "INVOKE_REBUILT_SPEEDGATE_URL": "https://tok-abcdef@git.example/sg.git"})
    assert isinstance(s["proxy.url"], secret.Secret) and isinstance(s["speedgate.url"], secret.Secret)
    dumped = json.dumps(s.redacted())
    assert "pw@x-1234" not in dumped and "tok-abcdef" not in dumped
    assert s["proxy.url"].reveal() == "http://u:pw@x-1234@127.0.0.1:9"


@pytest.mark.parametrize("value", ["alice:s3cr3tpw@127.0.0.1:9", "proxy.example:3128", "ftp://proxy:21",
                                   "http://:3128"])
def test_a_proxy_url_without_scheme_or_host_is_rejected_without_echoing_it(resolve, value):
    with pytest.raises(ConfigError) as err:
        resolve(environ={"INVOKE_REBUILT_PROXY_URL": value})
    text = err.value.render()
    assert "INVOKE_REBUILT_PROXY_URL" in text and "s3cr3tpw" not in text


def test_a_schemeless_source_url_with_a_password_is_rejected(resolve):
    with pytest.raises(ConfigError) as err:
        resolve(environ={"INVOKE_REBUILT_SGLANG_URL": "bob:hunter22@git.example/sglang.git"})
    assert "hunter22" not in err.value.render() and "no scheme" in str(err.value)


@pytest.mark.parametrize("item", ["proxy.url=http://u:pw1234@h:1", "sglang.url=https://tok@github.com/s/s.git",
                                  "serve.token=abc", "ccache.remote=redis://:pw1234@cache:6379"])
def test_credentials_on_the_command_line_are_refused(item):
    with pytest.raises(ConfigError) as err:
        settings_mod.parse_assignments([item])
    text = err.value.render()
    assert "command line" in text and "invoke.yaml" in text and "_FILE" in text
    assert "pw1234" not in text and "tok@" not in text


@pytest.mark.parametrize("item", ["proxy.url=http://proxy:3128", "sglang.url=https://github.com/s/s.git",
                                  "speedgate.url=git@git.example:gemm/speedgate.git"])
def test_urls_without_credentials_may_be_flags(item):
    assert settings_mod.parse_assignments([item])


def test_a_secret_from_a_file(resolve, tmp_path):
    f = tmp_path / "proxy-url"
    f.write_text("http://u:file-pw-1@127.0.0.1:9\n")
    s = resolve(environ={"INVOKE_REBUILT_PROXY_URL_FILE": str(f)})
    assert s["proxy.url"].reveal() == "http://u:file-pw-1@127.0.0.1:9"
    assert redact("it is file-pw-1") == "it is ***"
    with pytest.raises(ConfigError, match="INVOKE_REBUILT_PROXY_URL_FILE: cannot read"):
        resolve(environ={"INVOKE_REBUILT_PROXY_URL_FILE": str(tmp_path / "missing")})
    with pytest.raises(ConfigError, match="unknown setting"):  # only secret settings read files
        resolve(environ={"INVOKE_REBUILT_JOBS_FILE": str(f)})


def test_git_credentials_go_into_an_environment_header():
    from rebuilt.build import sources

    plain, env = sources.credential_env("https://x:tok-42abc@git.example:8443/a/b.git", environ={})
    assert plain == "https://git.example:8443/a/b.git"
    assert env["GIT_CONFIG_COUNT"] == "1"
    assert env["GIT_CONFIG_KEY_0"] == "http.https://git.example:8443/.extraHeader"
    assert env["GIT_CONFIG_VALUE_0"].startswith("Authorization: Basic ")
    _, env2 = sources.credential_env("https://x:tok-42abc@git.example/a.git", environ={"GIT_CONFIG_COUNT": "2"})
    assert env2["GIT_CONFIG_COUNT"] == "3" and "GIT_CONFIG_KEY_2" in env2
    assert sources.credential_env("https://git.example/a.git", environ={}) == ("https://git.example/a.git", {})
    assert sources.credential_env("git@git.example:a/b.git", environ={}) == ("git@git.example:a/b.git", {})


def test_private_files_and_folders(tmp_path):
    import os
    import stat

    from rebuilt.core import fs

    path = fs.write_json(tmp_path / "a" / "b" / "state.json", {"x": 1})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o700
    assert stat.S_IMODE(fs.mark_cachedir(tmp_path / "c").stat().st_mode) == 0o700
    with fs.open_private(tmp_path / "c" / "x.log") as f:
        f.write("hi")
    assert stat.S_IMODE(os.stat(tmp_path / "c" / "x.log").st_mode) == 0o600
    kept = tmp_path / "req.txt"
    kept.write_text("a\n")
    os.chmod(kept, 0o644)
    with fs.atomic_path(kept) as tmp:  # editing a user's file keeps its mode
        tmp.write_text("b\n")
    assert stat.S_IMODE(kept.stat().st_mode) == 0o644


def test_programs_get_the_real_value():
    """A Secret handed to a program (argv) is its value, not its redacted text."""
    from rebuilt.core import runner

    s = secret.Secret("https://x:tok-7788@git.example/a.git", "url")
    assert runner.capture(["echo", s]).stdout.strip() == "https://x:tok-7788@git.example/a.git"


def test_recipe_templates_get_the_real_value():
    from rebuilt.core.text import render

    s = secret.Secret("https://t:pw-12345@h/x.git", "url")
    assert render("git+{u}", {"u": s}) == "git+https://t:pw-12345@h/x.git"
    assert redact(render("git+{u}", {"u": s})) == "git+https://***@h/x.git"


def test_short_tokens_are_redacted_whole_in_settings_dumps():
    s = secret.Secret("abc")  # too short to be masked inside free text, still never printed
    assert secret.shown(s) == "***" and secret.shown("http://u:p@h") == "http://***@h" and secret.shown(3) == 3


def test_json_files_never_hold_a_secret_value(tmp_path):
    from rebuilt.core import fs

    s = secret.Secret("http://u:pw-js0n@h:1", "url")
    path = fs.write_json(tmp_path / "x.json", {"a": [s, {"b": s}], "c": 1})
    text = path.read_text()
    assert "pw-js0n" not in text and text.count("http://***@h:1") == 2 and json.loads(text)["c"] == 1
