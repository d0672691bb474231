"""The bisection loop: pick a commit, build it, decide, save the state; at the end the result and the restore."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rebuilt.core import runner
from rebuilt.errors import InputError, Interrupted, RebuiltError, StepFailed
from rebuilt.tools.bisect import report as bisect_report
from rebuilt.tools.bisect import search as bisect
from rebuilt.tools.bisect import verdict as bisect_verdict
from rebuilt.tools.bisect.builds import Builds


@dataclass
class Bench:
    """What a bench verdict needs besides the state: the loaded spec and where to run it."""

    spec: Any
    model_path: str
    check: bool
    cuda_visible_devices: str | None = None
    base_url: str | None = None


class Bisection:
    def __init__(self, state: bisect.State, builds: Builds, *, workdir: Path, python: str,
                 console: runner.Console, bench: Bench | None = None, keep: bool = False):
        self.state = state
        self.builds = builds
        self.workdir = Path(workdir)
        self.python = python
        self.console = console
        self.bench = bench
        self.keep = keep
        self.folder = bisect.folder(workdir, state.recipe)

    def save(self) -> None:
        bisect.save(self.state, self.workdir)

    def say(self, text: str) -> None:
        self.console.say(text)

    # ------------------------------------------------------------------ the loop
    def run(self) -> dict:
        st = self.state
        st.status, st.message = "running", ""
        self.save()
        try:
            while (i := bisect.next_index(st.verdicts())) is not None:
                self.test(i)
                self._check_ends(i)
            for end in (0, len(st.commits) - 1):  # a resumed bisection whose ends disagreed stops again
                self._check_ends(end)
        except (Interrupted, KeyboardInterrupt):
            st.status, st.message = "interrupted", "Ctrl-C; --resume continues"
            self.save()
            note = self._restore(fast_only=True)
            raise Interrupted(f"bisection interrupted; state in {self.folder / 'state.json'}; {note}",
                              hint=f"inv bisect --recipe {st.recipe} --resume continues it") from None
        except RebuiltError as exc:
            st.status, st.message = "failed", str(exc).splitlines()[0]
            self.save()
            note = self._restore()
            self.say(note)
            raise
        st.status = "done"
        self.save()
        self.say(bisect_report.table(st))
        self.say(bisect_report.result_text(st))
        if st.mode == "bench":
            try:
                self.say(f"plot: {bisect_report.plot(st, self.folder / 'bisect.png')}")
            except InputError as exc:
                self.say(f"! no plot: {exc.render()}")
        self.say(self._restore())
        return bisect_report.result(st)

    def _restore(self, fast_only: bool = False) -> str:
        if self.keep:
            return "--keep: the environment keeps the last candidate build"
        try:
            return self.builds.restore(self.state.start, fast_only=fast_only)
        except RebuiltError as exc:
            return f"! could not put the starting build back: {exc.render()}"

    def _check_ends(self, i: int) -> None:
        st, n = self.state, len(self.state.commits) - 1
        e = st.entry(i)
        if i == 0 and e.verdict != "good":
            what = {"bad": "is bad", "skip": "could not be tested", "unclear": "is unclear"}[e.verdict]
            if st.mode == "build-only":
                what = "does not build"
            raise InputError(f"the good ref {st.good} ({st.commit(0).hash[:12]}) {what}: {e.note}",
                             hint="give a --good ref that passes the test")
        if i == n and e.verdict != "bad":
            what = {"good": "is not bad", "skip": "could not be tested", "unclear": "is unclear"}[e.verdict]
            if st.mode == "build-only":
                what = "builds"
            why = f": {e.note}" if e.note and e.note != what else ""  # build-only: "builds" says it all
            raise InputError(f"the bad ref {st.bad} ({st.commit(n).hash[:12]}) {what}{why}",
                             hint="nothing to bisect: give a --bad ref that fails the test"
                                  + (" (or a smaller --threshold)" if st.mode == "bench" else ""))

    # ------------------------------------------------------------------ one commit
    def test(self, i: int) -> None:
        st, n = self.state, len(self.state.commits) - 1
        c, e = st.commit(i), st.entry(i)
        self.say(f"== [{i}/{n}] {c.hash[:12]} {c.subject}")
        given = st.good if i == 0 else st.bad if i == n else None
        ref = given if given and bisect.is_tag(st.source_dir, given, c.hash) else None
        record = self.builds.build(c.hash, ref)
        e.builds.append(record)
        self.save()
        if record["status"] == "failed":
            e.verdict = "bad" if st.mode == "build-only" else "skip"
            e.note = f"does not build: {record['error']}"
        elif st.mode == "build-only":
            e.verdict, e.note = "good", "builds"
        elif st.mode == "cmd":
            log = self.folder / "cmd" / f"{i:03d}-{c.hash[:12]}.log"
            rc = bisect_verdict.run_command(st.options["cmd"], cwd=str(self.builds.source_dir()), python=self.python,
                                            commit=c.hash, log=log)
            e.runs.append(str(log))
            e.verdict, e.note = bisect_verdict.exit_verdict(rc), f"exit {rc}"
        else:
            self._bench(i)
        self.save()
        self.say(f"   {e.verdict}: {e.note}")

    def _bench(self, i: int) -> None:
        st, e, opts = self.state, self.state.entry(i), self.state.options
        while True:
            manifest = next((b.get("manifest") for b in reversed(e.builds) if b.get("manifest")), None)
            stack = {"components": {st.recipe: {"commit": st.commit(i).hash, "manifest": manifest}},
                     "bisect": str(self.folder / "state.json")}
            try:
                values, run_dir = bisect_verdict.measure_bench(
                    self.bench.spec, python=self.python, model_path=self.bench.model_path, workdir=self.workdir,
                    metric=opts["metric"], check=self.bench.check, stack=stack, echo=self.say,
                    cuda_visible_devices=self.bench.cuda_visible_devices, base_url=self.bench.base_url)
            except StepFailed as exc:
                if i == 0:
                    raise
                e.verdict, e.note = "skip", f"the benchmark failed: {str(exc).splitlines()[0]}"
                return
            e.measured += 1
            e.runs.append(run_dir)
            for case, vals in values.items():
                e.values.setdefault(case, []).extend(vals)
            self.save()
            if i == 0:
                if not any(e.values.values()):
                    raise InputError(f"the reference run {run_dir} has no values of {opts['metric']}",
                                     hint="pick a --metric the spec's benchmark reports")
                e.verdict, e.note = "good", "reference"
                return
            verdict, why = bisect_verdict.judge_bench(st.entry(0).values, e.values, opts["metric"],
                                                      opts["threshold"], opts["alpha"])
            if verdict != "undecidable":
                e.verdict, e.note = verdict, why
                return
            if e.measured >= 2:
                e.verdict, e.note = "unclear", f"measured twice, still undecidable: {why}"
                return
            self.say(f"   undecidable ({why}); measuring once more")
