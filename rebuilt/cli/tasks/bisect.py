"""`inv bisect`: find the commit of a component that brought a regression, building as few commits as it can."""

from __future__ import annotations

from invoke import Collection, task

from rebuilt.cli.tasks._entry import entry
from rebuilt.cli.tasks.common import BUILD_HELP

HELP = {
    "recipe": "component whose checkout is bisected (a recipe name, e.g. flashinfer)",
    "good": "a ref (tag, branch, commit) known to be good: the reference",
    "bad": "a ref known to be bad; its first-parent commits after --good are the candidates",
    "spec": "bench spec (name in bench/specs/ or a .toml path; one_batch) measured on every candidate "
            "(default: setting bench.spec)",
    "metric": "the spec's metric to compare with the good ref, e.g. total_latency or prefill_throughput",
    "cmd": "decide by a shell command run in the checkout: exit 0 good, 125 skip, other bad (git bisect run)",
    "build_only": "decide by whether the commit builds: find the commit that broke the build",
    "threshold": "bench: smallest change, in percent of the good ref's median, that counts (default from "
                 "setting bench.factor: 5)",
    "repeats": "bench: repeats per measurement (default: the spec's)",
    "resume": "continue the bisection saved in <workdir>/bisect/<recipe>/state.json (after Ctrl-C or a crash)",
    "log": "print the saved bisection's table (and its result when finished), run nothing",
    "keep": "leave the last candidate installed instead of putting the starting build back",
    "no_checks": BUILD_HELP["no_checks"],
    "verbose": BUILD_HELP["verbose"],
    **{k: BUILD_HELP[k] for k in ("stack", "python", "set_", "workdir", "jobs")},
}


@task(help=HELP, iterable=["set_"])
@entry
def bisect(c, recipe=None, good=None, bad=None, spec=None, metric=None, cmd=None, build_only=False, threshold=None,
           repeats=None, resume=False, log=False, keep=False, stack=None, python=None, set_=None, workdir=None,
           jobs=None, no_checks=False, verbose=False):
    """Bisect a component's commits between a good and a bad ref: build, test, find the first bad commit."""
    from rebuilt.tools.bisect import driver as bisect_cli

    flags = {"stack": stack, "python": python, "set_": set_ or None, "workdir": workdir, "jobs": jobs,
             "no_checks": no_checks}
    bisect_cli.main(bisect_cli.Args(recipe=recipe, good=good, bad=bad, spec=spec, metric=metric, cmd=cmd,
                                    build_only=build_only, threshold=threshold, repeats=repeats, resume=resume,
                                    log=log, keep=keep, verbose=verbose, flags=flags))


ns = Collection("bisect")
ns.add_task(bisect)
