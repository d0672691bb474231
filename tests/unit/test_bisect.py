"""The pure parts of `inv bisect`: the choice of the next commit, its bound, skips, verdicts, state, recipe key."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from rebuilt.core.recipes import parse_recipe
from rebuilt.errors import ConfigError, InputError, StepFailed
from rebuilt.tools.bisect import search as bisect
from rebuilt.tools.bisect import verdict as bisect_verdict
from rebuilt.tools.bisect.builds import Builds


def run(n: int, first_bad: int, untestable: frozenset = frozenset()) -> tuple[list[int], bisect.Outcome]:
    """Bisect indices 0..n against an oracle: good before ``first_bad``, bad from it, skip in ``untestable``."""
    verdicts: list[str | None] = [None] * (n + 1)
    order = []
    while (i := bisect.next_index(verdicts)) is not None:
        assert verdicts[i] is None, f"index {i} tested twice"
        order.append(i)
        verdicts[i] = "skip" if i in untestable else "good" if i < first_bad else "bad"
    return order, bisect.outcome(verdicts)


@pytest.mark.parametrize("n", range(1, 65))
def test_every_position_is_found_within_ceil_log2_n_plus_2_tests(n):
    bound = math.ceil(math.log2(n)) + 2
    assert bisect.max_tests(n) == bound
    for first_bad in range(1, n + 1):
        order, out = run(n, first_bad)
        assert order[:2] == [0, n]  # the reference first, then the bad end
        assert len(order) <= bound, (n, first_bad, order)
        assert (out.first_bad, out.parent, out.undecided) == (first_bad, first_bad - 1, ())


@pytest.mark.parametrize("n", [2, 3, 7, 16, 30, 33, 64])
def test_a_skipped_commit_is_stepped_around_and_named_when_it_hides_the_answer(n):
    bound = math.ceil(math.log2(n)) + 2
    for first_bad in range(1, n + 1):
        for broken in range(1, n):
            order, out = run(n, first_bad, frozenset({broken}))
            # the skipped test, and the split one off the middle may cost one more (as in git bisect)
            assert len(order) <= bound + 2, (n, first_bad, broken, order)
            if broken == first_bad - 1:  # cannot tell whether the broken one or the next is first
                assert (out.first_bad, out.undecided, out.parent) == (first_bad, (broken,), broken - 1)
            elif broken == first_bad:  # the first bad one itself cannot be tested
                assert out.undecided == (broken,) and out.first_bad == first_bad + 1 and out.parent == broken - 1
            else:
                assert (out.first_bad, out.parent, out.undecided) == (first_bad, first_bad - 1, ())


def test_the_next_commit_after_a_skip_is_the_nearest_to_the_middle():
    order, out = run(30, 20, frozenset({18}))
    assert order == [0, 30, 15, 22, 18, 19, 20]
    assert out.first_bad == 20 and out.parent == 19


def test_ends_that_disagree_with_the_refs_stop_the_search():
    assert bisect.next_index([None, None, None]) == 0
    assert bisect.next_index(["good", None, None]) == 2
    assert bisect.next_index(["bad", None, None]) is None  # good ref is bad: the caller says so
    assert bisect.next_index(["good", None, "good"]) is None
    assert bisect.next_index(["good", None, "skip"]) is None
    with pytest.raises(ValueError):
        bisect.next_index([None])


def test_unclear_counts_as_undecided():
    verdicts = ["good", "good", "unclear", "bad", "bad"]
    assert bisect.next_index(verdicts) is None
    assert bisect.outcome(verdicts) == bisect.Outcome(3, 1, (2,))


# --------------------------------------------------------------------------- verdicts

REF = [1.00, 1.02, 0.99, 1.01, 1.00]


def test_bad_only_when_significant_and_beyond_the_threshold():
    ref = {"bs1": REF}
    slow = {"bs1": [x * 10 for x in REF]}
    assert bisect_verdict.judge_bench(ref, slow, "total_latency", 100, 0.05)[0] == "bad"
    a_bit = {"bs1": [x * 1.3 for x in REF]}  # significant, but within 100%
    assert bisect_verdict.judge_bench(ref, a_bit, "total_latency", 100, 0.05)[0] == "good"
    assert bisect_verdict.judge_bench(ref, a_bit, "total_latency", 5, 0.05)[0] == "bad"
    faster = {"bs1": [x / 10 for x in REF]}  # a big change the good way is not a regression
    assert bisect_verdict.judge_bench(ref, faster, "total_latency", 5, 0.05)[0] == "good"


def test_throughput_is_worse_when_lower():
    ref = {"bs1": [100.0, 101.0, 99.0]}
    assert bisect_verdict.judge_bench(ref, {"bs1": [40.0, 41.0, 39.0]}, "prefill_throughput", 5, 0.05)[0] == "bad"
    assert bisect_verdict.judge_bench(ref, {"bs1": [400.0, 410.0, 390.0]}, "prefill_throughput", 5, 0.05)[0] == \
        "good"


def test_beyond_the_threshold_but_not_significant_is_undecidable():
    ref = {"bs1": [1.0, 1.1, 4.0]}
    noisy = {"bs1": [3.0, 3.1, 0.5]}  # median x2.8, but the samples overlap
    verdict, why = bisect_verdict.judge_bench(ref, noisy, "total_latency", 100, 0.05)
    assert verdict == "undecidable" and "not significant" in why
    assert bisect_verdict.judge_bench({"bs1": [1.0]}, {"bs1": [5.0]}, "total_latency", 5, 0.05)[0] == "undecidable"
    assert bisect_verdict.judge_bench(ref, {}, "total_latency", 5, 0.05)[0] == "undecidable"


def test_any_bad_case_makes_the_commit_bad():
    ref = {"a": REF, "b": REF}
    got = {"a": REF, "b": [x * 3 for x in REF]}
    verdict, why = bisect_verdict.judge_bench(ref, got, "total_latency", 50, 0.05)
    assert verdict == "bad" and why.startswith("b:")


def test_exit_status_follows_git_bisect_run():
    assert [bisect_verdict.exit_verdict(rc) for rc in (0, 1, 2, 124, 125, 126, 127)] == \
        ["good", "bad", "bad", "bad", "skip", "bad", "bad"]
    for rc in (128, 130, 255, -9):
        with pytest.raises(StepFailed):
            bisect_verdict.exit_verdict(rc)


def test_unknown_metric_names_the_known_ones():
    with pytest.raises(InputError, match="did you mean 'total_latency'"):
        bisect_verdict.check_metric("one_batch", "total_latncy")


# --------------------------------------------------------------------------- state and recipe key

def _state() -> bisect.State:
    commits = [{"hash": f"{i:040x}", "subject": f"c{i}", "date": "2026-01-01T00:00:00+00:00"} for i in range(3)]
    return bisect.State(recipe="r", mode="cmd", good="v1", bad="main", commits=commits,
                        options={"cmd": "true"}, flags={"jobs": "2"}, source_dir="/src")


def test_state_round_trips_and_a_foreign_file_is_refused(tmp_path):
    st = _state()
    st.entry(1).verdict = "skip"
    st.entry(1).builds.append({"status": "failed", "manifest": "/m.json", "error": "boom"})
    bisect.save(st, tmp_path)
    again = bisect.load(tmp_path, "r")
    assert again == st and again.verdicts() == [None, "skip", None]
    assert bisect.load(tmp_path, "other") is None
    path = tmp_path / "bisect" / "r" / "state.json"
    path.write_text('{"schema_version": 99}')
    with pytest.raises(InputError) as err:
        bisect.load(tmp_path, "r")
    assert "schema_version 99" in str(err.value) and "remove" in err.value.render()


def _recipe(tmp_path: Path, extra: str) -> Path:
    p = tmp_path / "thing.toml"
    p.write_text('[recipe]\nsummary = "x"\n[source]\nurl = "u"\nref = "v1"\n' + extra)
    return p


def test_recipe_bisect_clear_is_validated(tmp_path):
    assert parse_recipe(_recipe(tmp_path, '[bisect]\nclear = ["~/.cache/x"]\n')).bisect_clear == ("~/.cache/x",)
    assert parse_recipe(_recipe(tmp_path, "")).bisect_clear == ()
    with pytest.raises(ConfigError, match=r"thing.toml:7: bisect.claer: unknown key \(did you mean 'clear'\?\)"):
        parse_recipe(_recipe(tmp_path, '[bisect]\nclaer = ["~/.cache/x"]\n'))
    with pytest.raises(ConfigError, match="folder paths"):
        parse_recipe(_recipe(tmp_path, "[bisect]\nclear = [3]\n"))


def _builds(tmp_path: Path, clear: tuple[str, ...]) -> Builds:
    b = Builds.__new__(Builds)
    b.recipe = parse_recipe(_recipe(tmp_path, ""))
    b.recipe = type(b.recipe)(**{**b.recipe.__dict__, "bisect_clear": clear})
    b.console = type("C", (), {"say": lambda self, text: None})()
    return b


def test_clearing_between_commits_removes_only_what_the_recipe_names(tmp_path, monkeypatch):
    cache = tmp_path / "cache" / "jit"
    (cache / "sub").mkdir(parents=True)
    monkeypatch.setenv("JIT_DIR", str(cache))
    monkeypatch.delenv("UNSET_DIR", raising=False)
    _builds(tmp_path, ("${JIT_DIR}", "${UNSET_DIR}")).clear_caches()
    assert not cache.exists() and (tmp_path / "cache").exists()
    for bad in ("relative/dir", "/", "~"):
        with pytest.raises(ConfigError):
            _builds(tmp_path, (bad,)).clear_caches()


# ---------------------------------------------------------------- the loop, with builds and measurements faked

import io  # noqa: E402

from rebuilt.core import runner  # noqa: E402
from rebuilt.errors import Interrupted  # noqa: E402
from rebuilt.tools.bisect import run as bisect_run  # noqa: E402

REF3 = [1.00, 1.01, 0.99]


class FakeBuilds:
    def __init__(self, broken=()):
        self.broken, self.built, self.restored = set(broken), [], []

    def build(self, commit, ref=None):
        self.built.append(commit)
        if commit in self.broken:
            return {"status": "failed", "manifest": f"/m/{commit}.json", "error": "step x:wheel failed"}
        return {"status": "built", "manifest": f"/m/{commit}.json"}

    def restore(self, start, fast_only=False):
        self.restored.append(fast_only)
        return "restored"

    def source_dir(self):
        return Path("/src")


def _loop_state(n: int, mode: str) -> bisect.State:
    commits = [{"hash": f"{i:040x}", "subject": f"c{i}", "date": "2026-01-01T00:00:00+00:00"} for i in range(n + 1)]
    return bisect.State(recipe="r", mode=mode, good="v1", bad="main", commits=commits, source_dir="/src", flags={},
                        options={"metric": "total_latency", "threshold": 50.0, "alpha": 0.05, "cmd": "check",
                                 "spec": "s"})


def _bisection(tmp_path, state, builds) -> bisect_run.Bisection:
    bench = bisect_run.Bench(spec=None, model_path="/m", check=False)
    return bisect_run.Bisection(state, builds, workdir=tmp_path, python="/py", bench=bench,
                                console=runner.Console(stream=io.StringIO()))


@pytest.fixture
def no_git(monkeypatch):
    monkeypatch.setattr(bisect, "is_tag", lambda src, ref, commit: False)


def test_an_undecidable_commit_is_measured_twice_then_unclear_never_guessed(tmp_path, monkeypatch, no_git):
    calls: dict[int, int] = {}

    def measure(spec, *, stack, **kw):
        i = int(stack["components"]["r"]["commit"], 16)
        calls[i] = calls.get(i, 0) + 1
        vals = [3.0, 3.1, 0.5] if i == 4 else [x * 3 for x in REF3] if i >= 5 else REF3
        return {"bs1": vals}, f"/runs/{i}-{calls[i]}"

    monkeypatch.setattr(bisect_run.bisect_verdict, "measure_bench", measure)
    st, builds = _loop_state(8, "bench"), FakeBuilds()
    result = _bisection(tmp_path, st, builds).run()
    assert calls == {0: 1, 8: 1, 4: 2, 3: 1, 5: 1}
    assert st.entry(4).verdict == "unclear" and st.entry(4).measured == 2 and len(st.entry(4).values["bs1"]) == 6
    assert result["first_bad"]["index"] == 5 and result["parent"]["index"] == 3
    assert [u["index"] for u in result["undecided"]] == [4]
    assert builds.restored == [False] and bisect.load(tmp_path, "r").status == "done"
    assert (tmp_path / "bisect" / "r" / "bisect.png").exists()


def test_a_good_ref_that_fails_stops_with_the_reason_and_puts_the_build_back(tmp_path, monkeypatch, no_git):
    monkeypatch.setattr(bisect_run.bisect_verdict, "run_command", lambda cmd, **kw: 1)
    st, builds = _loop_state(4, "cmd"), FakeBuilds()
    with pytest.raises(InputError, match="the good ref v1 .* is bad: exit 1"):
        _bisection(tmp_path, st, builds).run()
    assert bisect.load(tmp_path, "r").status == "failed" and builds.restored == [False]


def test_build_only_calls_a_failed_build_bad(tmp_path, no_git):
    n = 12
    st = _loop_state(n, "build-only")
    builds = FakeBuilds(broken={f"{i:040x}" for i in range(7, n + 1)})
    result = _bisection(tmp_path, st, builds).run()
    assert result["first_bad"]["index"] == 7 and "does not build" in result["first_bad"]["note"]
    assert len(builds.built) <= bisect.max_tests(n)


def test_interrupted_then_resumed_tests_no_commit_twice(tmp_path, monkeypatch, no_git):
    rcs = {i: 125 if i == 3 else 0 if i < 6 else 1 for i in range(11)}
    seen: list[int] = []

    def command(cmd, *, commit, **kw):
        i = int(commit, 16)
        if len(seen) == 3 and not any(isinstance(s, str) for s in seen):
            seen.append("interrupt")
            raise KeyboardInterrupt
        seen.append(i)
        return rcs[i]

    monkeypatch.setattr(bisect_run.bisect_verdict, "run_command", command)
    st, builds = _loop_state(10, "cmd"), FakeBuilds()
    with pytest.raises(Interrupted) as err:
        _bisection(tmp_path, st, builds).run()
    assert "inv bisect --recipe r --resume" in err.value.render()
    saved = bisect.load(tmp_path, "r")
    assert saved.status == "interrupted" and builds.restored == [True]
    result = _bisection(tmp_path, saved, builds).run()
    tested = [s for s in seen if s != "interrupt"]
    assert len(tested) == len(set(tested))
    assert result["first_bad"]["index"] == 6 and saved.entry(5).verdict == "good"


def _finished(tmp_path) -> bisect.State:
    st = _loop_state(6, "bench")
    for i, (verdict, vals) in enumerate([("good", REF3), (None, None), ("good", REF3), ("skip", None),
                                         ("bad", [3.0, 3.2, 2.9]), (None, None), ("bad", [3.1, 3.0, 3.3])]):
        if verdict:
            e = st.entry(i)
            e.verdict, e.note = verdict, "does not build: boom" if verdict == "skip" else "why"
            e.builds.append({"status": "failed" if verdict == "skip" else "built"})
            e.values = {"bs1": vals} if vals else {}
    st.status = "done"
    return st


def test_the_result_names_the_commits_a_skip_leaves_open(tmp_path):
    from rebuilt.tools.bisect import report as bisect_report

    st = _finished(tmp_path)
    text = bisect_report.result_text(st)
    assert "the first bad commit is one of these 2" in text and f"{4:040x}" in text and f"{3:040x}" in text
    assert "its parent (last good): " + f"{2:040x}" in text
    assert "measured bs1: median 3 (min 2.9, max 3.2, n=3)" in text
    table = bisect_report.table(st)
    assert "(1 untested)" in table and "5 commit(s) tested, 5 build(s) compiled" in table  # a failed one counts


def test_without_matplotlib_the_plot_is_refused_with_what_to_install(tmp_path, monkeypatch):
    import sys

    from rebuilt.tools.bisect import report as bisect_report

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    with pytest.raises(InputError) as err:
        bisect_report.plot(_finished(tmp_path), tmp_path / "p.png")
    assert "matplotlib is not installed" in str(err.value) and "pip install matplotlib" in err.value.render()
    assert not (tmp_path / "p.png").exists()
