"""One numeric parser for flags and settings: one error class, a message naming the flag or setting and the
form it expects, and the same message whichever task, session or settings layer the value came from."""

from __future__ import annotations

import math

import pytest

from rebuilt.core import flags
from rebuilt.errors import ConfigError


@pytest.mark.parametrize("value, kw, expected", [
    ("8", {}, 8), (" 3 ", {}, 3), (4, {}, 4), (4.0, {}, 4),
    ("1.5", {"kind": float}, 1.5), ("2", {"kind": float}, 2), ("inf", {"kind": float, "infinite": True}, math.inf),
    ("AUTO", {"words": ("auto",)}, "auto"),
])
def test_numbers_in_every_form_people_type(value, kw, expected):
    assert flags.number(value, "--x", **kw) == expected


@pytest.mark.parametrize("value, kw, message", [
    ("abc", {}, r"--x: 'abc' is not a number; expected a whole number$"),
    ("2.5", {}, r"--x: '2.5' is not a whole number; expected a whole number$"),
    (True, {}, r"--x: True is not a number"),
    ("nan", {"kind": float}, r"'nan' is not a number; expected a number$"),
    ("inf", {"kind": float}, r"'inf' is not a number"),
    ("many", {"words": ("auto",)}, r"expected a whole number or 'auto'$"),
    ("0", {"minimum": 1}, r"--x: '0' must be at least 1$"),
    ("9", {"maximum": 8}, r"--x: '9' must be at most 8$"),
])
def test_one_error_class_naming_the_flag_and_the_form(value, kw, message):
    with pytest.raises(ConfigError, match=message):
        flags.number(value, "--x", **kw)


def test_callers_share_the_parser_and_its_message(resolve):
    from rebuilt.cli import nox_sessions
    from rebuilt.tools.bench import spec as bspec

    with pytest.raises(ConfigError, match=r"^--repeats: 'x' is not a number; expected a whole number$"):
        nox_sessions.parse_posargs(["--repeats", "x"])
    assert nox_sessions.parse_posargs(["--repeats", "3"]).repeats == 3  # parsed once, carried as a number
    with pytest.raises(ConfigError, match=r"^--cases: 'four' is not a number; expected a number$"):
        bspec.parse_cases("bs=four", "one_batch")
    with pytest.raises(ConfigError, match=r"^setting jobs \(from flag --jobs\): 'x' is not a number; "
                                          r"expected a whole number or 'auto'$"):
        resolve({"jobs": "x"})
    with pytest.raises(ConfigError, match=r"^setting bench.factor \(from flag --set bench.factor\): 'x' is not a "
                                          r"number; expected a number$"):
        resolve(assignments={"bench.factor": "x"})
    assert resolve({"jobs": "8"})["jobs"] == 8 and resolve({"jobs": "auto"})["jobs"] == "auto"
