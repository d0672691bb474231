"""Secret settings: typed, printed redacted, never from the command line; redaction of URLs and known values."""

from __future__ import annotations

import json

import pytest

from rebuilt.core import secret
from rebuilt.core import settings as settings_mod
from rebuilt.core.secret import forget_secrets, redact
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


def test_secret_prints_redacted():
    s = secret.Secret("http://bob:pw-9876@proxy:3128", "url")
    for shown in (str(s), repr(s), f"{s}", f"{s!s:>60}", "%s" % s, "{}".format(s), str([s]), s.redacted):  # noqa: UP031, UP032
        assert "pw-9876" not in shown and "***@proxy:3128" in shown
    assert str(secret.Secret("x-token")) == "***" and "x-token" not in repr(secret.Secret("x-token"))
    assert str(secret.Secret("")) == "" and not secret.Secret("") and secret.Secret("x-token")


@pytest.mark.parametrize("operation", [
    lambda s: s[7:20], lambda s: s + "x", lambda s: "x" + s, lambda s: s.split(":"), lambda s: s.startswith("http"),
    lambda s: s % (), lambda s: s * 2, lambda s: len(s), lambda s: list(s), lambda s: "pw" in s,
    lambda s: s.replace("a", "b"), lambda s: s.encode(),
])
def test_string_operations_refuse_instead_of_giving_out_the_value(operation):
    s = secret.Secret("http://bob:pw-9876@proxy:3128", "url")
    with pytest.raises(TypeError, match="a Secret is not text") as err:
        operation(s)
    assert "pw-9876" not in str(err.value)
    with pytest.raises(TypeError):
        json.dumps(s)


def test_a_secret_is_not_text_and_equals_only_a_secret():
    s = secret.Secret("tok-123456")
    assert not isinstance(s, str) and s != "tok-123456" and "tok-123456" not in [s]
    assert s == secret.Secret("tok-123456") and s != secret.Secret("tok-123456", "url")
    assert len({s, secret.Secret("tok-123456")}) == 1
    assert secret.Secret(s).reveal() == "tok-123456"
    with pytest.raises(TypeError):
        secret.Secret(42)


def test_pickling_or_copying_a_secret_gives_a_secret():
    import copy
    import pickle

    s = secret.Secret("https://u:pw-pickle@h/x.git", "url")
    for back in (pickle.loads(pickle.dumps(s)), copy.copy(s), copy.deepcopy(s)):
        assert isinstance(back, secret.Secret) and not isinstance(back, str)
        assert back.reveal() == s.reveal() and str(back) == "https://***@h/x.git"


def test_the_value_is_revealed_for_a_process_only():
    s = secret.Secret("https://x:tok-7788@git.example/a.git", "url")
    assert secret.reveal_args(["git", "fetch", s, 3]) == ["git", "fetch", "https://x:tok-7788@git.example/a.git", "3"]
    assert secret.reveal_env({"HTTPS_PROXY": s, "A": "1", "B": None}) == {
        "HTTPS_PROXY": "https://x:tok-7788@git.example/a.git", "A": "1", "B": None}
    assert secret.reveal(s) == s.reveal() and secret.reveal(7) == 7
    assert secret.public(s) == "https://git.example/a.git" and secret.public(secret.Secret("tok-7788")) == "***"


def test_the_runner_hands_a_step_its_secret_environment_in_clear():
    from rebuilt.core import runner

    s = secret.Secret("http://u:pw-env1@proxy:3128", "url")
    env = runner.step_environment({"PATH": "/bin"}, {"HTTPS_PROXY": s, "X": "${PATH}:/x"})
    assert env == {"PATH": "/bin", "HTTPS_PROXY": "http://u:pw-env1@proxy:3128", "X": "/bin:/x"}


def test_a_bare_ssh_login_name_is_not_a_credential():
    for url in ("ssh://git@github.com/a/b.git", "git+ssh://deploy@git.example/a.git", "git://git@h/a.git"):
        assert not secret.carries_credentials(url)
        assert settings_mod.parse_assignments([f"sglang.url={url}"])  # so it may be a flag
    secret.Secret("ssh://deploy@git.example/a.git", "url")
    assert redact("the deploy key") == "the deploy key"  # the login name was not registered
    assert secret.carries_credentials("ssh://git:pw-ssh1@h/a.git")  # a password is one, whatever the scheme


def test_a_token_given_as_the_user_name_of_a_url_is_redacted_everywhere():
    secret.Secret("https://ghp-tok3n-user@github.com/a/b.git", "url")
    assert redact("fatal: auth failed for ghp-tok3n-user") == "fatal: auth failed for ***"
    assert secret.url_password("https://ghp-tok3n-user@github.com/a/b.git") == "ghp-tok3n-user"
    assert secret.url_password("https://u:pw-2@h/x") == "pw-2" and secret.url_password("https://h/x") is None


def test_a_url_without_credentials_stays_text(resolve):
    s = resolve(environ={"INVOKE_REBUILT_SPEEDGATE_URL": "https://git.example/sg.git",
                         "INVOKE_REBUILT_SERVE_MOONCAKE_PASSWORD": "pw-moon-1"})
    assert s["speedgate.url"] == "https://git.example/sg.git" and isinstance(s["speedgate.url"], str)
    assert isinstance(s["serve.mooncake.password"], secret.Secret) and str(s["serve.mooncake.password"]) == "***"


def test_a_redactor_knows_secret_settings_and_shows_a_secret_redacted():
    pw = secret.Secret("pw-red-1")
    r = secret.from_settings([("serve.mooncake.password", pw), ("serve.mooncake.url", "redis://:pw-url-2@h:1"),
                              ("serve.port", 30000), ("sglang.url", "ssh://git@h/a.git")])
    assert r.values() == sorted({"pw-red-1", "pw-url-2"})
    assert r("a pw-red-1 b pw-url-2 c git") == "a *** b *** c git"
    assert r(pw) == "***" and r.argv(["--password", pw]) == ["--password", "***"]
    assert r.env({"MOONCAKE_PASSWORD": "short", "X": pw}) == {"MOONCAKE_PASSWORD": "***", "X": "***"}


@pytest.mark.parametrize("key, kind", [
    ("proxy.url", "url"), ("speedgate.url", "url"), ("sglang.url", "url"), ("ccache.remote", "url"),
    ("serve.password", "value"), ("hub.token", "value"), ("serve.api_key", "value"),
    ("hub.secret", "value"), ("serve.mooncake.passwd", "value"), ("serve.secrets", None), ("bench.tokens", None),
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


def test_urls_with_at_signs_and_nested_schemes_are_read_by_their_userinfo_only():
    assert secret.userinfo("https://h.example/a/b@c") is None  # an '@' in the path is no userinfo
    assert secret.userinfo("https://h.example/a@b/c") is None
    assert secret.schemeless_credentials("alice:pw-1@h://x") and not secret.schemeless_credentials("http://u:p@h")
    assert secret.userinfo("https://u:p@h.example/?next=http://x") == ("u", "p")
    assert secret.carries_credentials("alice:pw-1@proxy:3128")  # without a scheme
    assert not secret.carries_credentials("ssh://git@h/a.git?mirror=http://x")
    assert secret.strip_credentials("https://u:p@ss@h.example/a@b?u=http://x") == "https://h.example/a@b?u=http://x"
    assert secret.strip_credentials("https://h.example/x") == "https://h.example/x"


def test_registered_values_and_their_encodings_are_masked_longest_first():
    secret.Secret("pw with/slash")
    assert redact("a pw%20with%2Fslash b pw+with%2Fslash c") == "a *** b *** c"
    secret.Secret("abcd")  # the shortest value masked inside text
    secret.Secret("abcdef")
    assert redact("x abcdef y abcd") == "x *** y ***"
    secret.Secret("abc")
    assert redact("abc") == "abc"
    secret.register_secret(None)
    secret.register_secret(1234)
    assert redact("XXXX 1234") == "XXXX 1234"


def test_a_secret_formats_with_a_spec_and_refuses_what_is_not_text():
    s = secret.Secret("tok-123456")
    assert f"{s:>5}" == "  ***" and f"{s:<4}|" == "*** |"
    with pytest.raises(TypeError, match="a Secret holds text, not int"):
        secret.Secret(42)
    assert not hasattr(s, "foo") and not hasattr(s, "__getnewargs__")
    with pytest.raises(AttributeError, match="foo"):
        s.foo  # noqa: B018


def test_a_redactor_masks_its_values_longest_first_and_short_ones_too():
    r = secret.Redactor(["secret-1", "my-secret-1-long", "abc", "redis://u:xyz@h:1", "p/w@x", 5, None])
    assert r("my-secret-1-long and secret-1") == "*** and ***"
    assert r("abc xyz p%2Fw%40x") == "*** *** ***"
    assert r.env({"PLAIN": "hello", "HF_TOKEN": "", "NONE": None, "X_PASSWORD": "h"}) == {
        "PLAIN": "hello", "HF_TOKEN": "", "NONE": None, "X_PASSWORD": "***"}
    assert r.deep({"a": ["abc", {"b": ("xyz", 1)}], "c": None}) == {"a": ["***", {"b": ["***", 1]}], "c": None}
    r2 = secret.from_settings([("serve.port", 30000), ("serve.mooncake.password", "pw-after-a-number")])
    assert r2("pw-after-a-number") == "***"
