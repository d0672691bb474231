"""Good or bad for one built commit: a benchmark metric against the good reference, or a command's exit status.

A benchmark verdict uses what ``inv bench.compare`` uses (``rebuilt.tools.bench.compare.judge``:
a two-sided Mann-Whitney U test, or non-overlapping ranges for few repeats, and a
ratio of medians beyond a factor). A commit is ``bad`` only when some case is worse
than the reference, significantly AND beyond ``--threshold``; it is ``undecidable``
when a case is beyond the threshold in the worse direction but the test cannot call
it significant (noise, or fewer than two repeats); otherwise ``good``. The caller
measures an undecidable commit once more and then calls it ``unclear``: never a guess.

A command follows ``git bisect run``: exit 0 good, 125 skip, 1..127 bad; anything
else (killed by a signal) stops the bisection, as it stops git's.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from rebuilt.core import runner
from rebuilt.core.fs import write_text
from rebuilt.core.text import did_you_mean
from rebuilt.errors import InputError, StepFailed
from rebuilt.tools.bench import compare, stats


def check_metric(kind: str, metric: str) -> None:
    known = compare.METRICS[kind]
    if metric not in known:
        raise InputError(f"--metric {metric!r} is not a {kind} metric{did_you_mean(metric, known)}",
                         hint=f"{kind} metrics: {', '.join(known)}")


def _worse_direction(metric: str, ratio: float) -> bool:
    sign = compare.direction(metric)
    return ratio != 1 if sign == 0 else (ratio > 1) == (sign < 0)


def judge_case(a: list[float], b: list[float], metric: str, threshold_pct: float, alpha: float) -> tuple[str, str]:
    """(good | bad | undecidable, a one-line reason) for one case's samples: ``a`` reference, ``b`` candidate."""
    if not a or not b:
        return "undecidable", "no values"
    factor = 1 + threshold_pct / 100
    verdict, change = compare.judge(a, b, metric, factor, alpha)
    ma, mb = stats.median(a), stats.median(b)
    ratio = mb / ma if ma else float("inf")
    test = verdict.method + (f" p={verdict.p:.3g}" if verdict.p is not None else "")
    why = f"median {mb:.4g} vs {ma:.4g} (x{ratio:.3f}, n {len(b)}/{len(a)}, {test})"
    if change in ("worse", "changed"):
        return "bad", why + f": worse beyond {threshold_pct:g}%"
    big = ratio >= factor or ratio <= 1 / factor
    if big and _worse_direction(metric, ratio) and verdict.significant is not True:
        return "undecidable", why + f": beyond {threshold_pct:g}% but not significant"
    return "good", why


def judge_bench(reference: Mapping[str, list[float]], measured: Mapping[str, list[float]], metric: str,
                threshold_pct: float, alpha: float) -> tuple[str, str]:
    """The commit's verdict over every case of the reference: any bad → bad; else any undecidable → undecidable."""
    results = {case: judge_case(list(a), list(measured.get(case, [])), metric, threshold_pct, alpha)
               for case, a in reference.items()}
    for wanted in ("bad", "undecidable"):
        hits = [f"{case}: {why}" for case, (v, why) in results.items() if v == wanted]
        if hits:
            return wanted, "; ".join(hits)
    return "good", "; ".join(f"{case}: {why}" for case, (_, why) in results.items())


def measure_bench(spec, *, python: str, model_path: str, workdir: Path, metric: str, check: bool,
                  stack: Mapping, echo: Callable[[str], None], cuda_visible_devices: str | None = None,
                  base_url: str | None = None) -> tuple[dict[str, list[float]], str]:
    """Run the spec once (its repeats) through ``rebuilt.tools.bench.run``; (case → samples of ``metric``, run dir)."""
    from rebuilt.tools.bench import run as brun

    out = brun.execute(spec, python=python, model_path=model_path, workdir=workdir, check=check, stack=stack,
                       echo=echo, cuda_visible_devices=cuda_visible_devices, base_url=base_url)
    return compare.samples(out.run, metric), str(out.run_dir)


def exit_verdict(rc: int) -> str:
    """``git bisect run`` semantics for a command's exit status."""
    if rc == 0:
        return "good"
    if rc == 125:
        return "skip"
    if 1 <= rc <= 127:
        return "bad"
    raise StepFailed(f"the --cmd command exited {rc} (above 127 or killed by a signal): the bisection stops, "
                     f"as `git bisect run` does", hint="exit 0 for good, 1..127 (not 125) for bad, 125 to skip")


def run_command(cmd: str, *, cwd: str, python: str, commit: str, log: Path) -> int:
    """The user's command through bash in the checkout, the target interpreter's bin first on PATH.

    It runs in a process group of its own (``runner.capture``): Ctrl-C stops the whole group, the
    children the command started included, and so does rebuilt's death (the runner's warden).
    """
    env = {**os.environ, "PATH": f"{Path(python).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "REBUILT_BISECT_COMMIT": commit, "REBUILT_PYTHON": python}
    proc = runner.capture(["/bin/bash", "-c", cmd], cwd=cwd, env=env, timeout=None)
    write_text(log, f"$ {cmd}\n# cwd {cwd}\n# commit {commit}\n# exit {proc.returncode}\n\n{proc.stdout}"
                    + (f"\n# --- stderr ---\n{proc.stderr}" if proc.stderr.strip() else ""))
    return proc.returncode
