"""Profiler-trace tasks: Perfetto-compatible kernels, merged ranks, a summary table."""

from __future__ import annotations

from invoke import Collection, task

from rebuilt.cli.tasks._entry import entry
from rebuilt.core import flags

H_OUT = "output file (.json or .json.gz); default beside the input"


@task(help={
    "trace": "torch.profiler / sglang trace (.json or .json.gz)",
    "output": H_OUT + ", e.g. x.perfetto.json.gz",
})
@entry
def perfetto_fix(c, trace, output=None):
    """Move PDL-overlapped kernels to extra tracks so Perfetto shows every kernel."""
    from pathlib import Path

    from rebuilt.tools.trace import io
    from rebuilt.tools.trace import perfetto_fix as fix

    src = Path(trace)
    out = Path(output) if output else io.default_output(src, "perfetto")
    result = fix.fix_file(src, out)
    print(f"{src}: {result.summary()}")
    if result.opaque:
        print(f"  note: {result.opaque} event(s) are not valid JSON; copied unchanged")
    print(f"wrote {out}")


@task(help={
    "paths": "the profile folder, one rank file, a quoted glob, or several files joined by commas",
    "output": "merged file (.json or .json.gz); default <folder>/<time>[-STAGE].merged.trace.json.gz",
    "window-ms": "keep only START:END ms after the profile's first event, e.g. 100:250, 100: or :50",
    "gpu-only": "keep only GPU processes (streams), drop CPU threads",
    "fix": "apply perfetto-fix to every rank in the same pass",
    "group": "which profile to merge when the folder holds several (name or prefix as listed)",
})
@entry
def merge(c, paths, output=None, window_ms=None, gpu_only=False, fix=False, group=None):
    """Merge sglang's per-rank traces of one profile into one Perfetto timeline."""
    from pathlib import Path

    from rebuilt.tools.trace import merge as m

    groups = m.choose(m.discover(_expand(paths)), group, output is not None)
    opts = m.Options(window_ms=m.parse_window(window_ms), gpu_only=gpu_only, fix=fix)
    for g in groups:
        out = Path(output) if output else g.default_output()
        report = m.merge_group(g, out, opts)
        print(report.summary())


def _expand(paths: str) -> list:
    """A folder, a file, a glob, or a comma-separated list of those."""
    import glob
    from pathlib import Path

    out = []
    for part in [p.strip() for p in str(paths).split(",") if p.strip()]:
        if any(ch in part for ch in "*?[") and not Path(part).exists():
            hits = sorted(Path(p) for p in glob.glob(part))
            if not hits:
                from rebuilt.errors import InputError

                raise InputError(f"{part}: matches no files")
            out.extend(hits)
        else:
            out.append(Path(part))
    return out


@task(help={
    "trace": "torch.profiler / sglang trace (.json or .json.gz)",
    "csv": "also write every stream and kernel row to this CSV file",
    "top": "how many kernels to list (default 15)",
})
@entry
def summary(c, trace, csv=None, top=15):
    """Per GPU stream busy/idle time, top kernels, gaps between kernels: a table."""
    from rebuilt.tools.trace import summary as s

    top = flags.number(top, "--top", minimum=1)
    result = s.summarize(trace)
    print(s.render(result, top=top))
    if csv:
        print(f"\nwrote {s.write_csv(result, csv)}")


ns = Collection("profile")
for _t in (perfetto_fix, merge, summary):
    ns.add_task(_t)
