"""What `inv src.patch-new` and `inv src.patch-check` print and do, over rebuilt/build/patches.py."""

from __future__ import annotations

from rebuilt.build import patches, sources
from rebuilt.core import runner
from rebuilt.errors import StepFailed


def _run(argv, cwd=None, check=True, shell=False) -> int:
    """The `run` callable sources.apply_patches expects, for short git commands outside a build."""
    proc = runner.capture(argv, cwd=cwd, timeout=600)
    if check and proc.returncode != 0:
        raise StepFailed(f"`{' '.join(map(str, argv))}` exited {proc.returncode}: {(proc.stderr or '').strip()}")
    return proc.returncode


def new(settings, recipe: str, name: str, add: list[str] = ()) -> None:
    made = patches.new(settings, recipe, name, add)
    print(f"wrote {made.path} (sha256 {made.sha256[:12]}), {len(made.files)} file(s):")
    for f in made.files:
        print(f"  {f}")
    left = made.edits.left_out
    if left:
        print(f"left out {len(left)} untracked file(s) (build outputs and the like), e.g. {', '.join(left[:3])}: "
              f"--add PATH (or `git add -N PATH` in the checkout) puts a new file of yours into a patch")
    applied = patches.restore(settings, recipe, _run, add)
    dest = patches.checkout_of(settings, recipe)
    print(f"{dest}: back at {sources.git(dest, 'rev-parse', '--short=12', 'HEAD')[1]} with "
          f"{len(applied)} patch(es) applied as a build applies them: "
          + ", ".join(f"{a['patch']} ({a['state']})" for a in applied))


def check(settings, recipe: str, ref: str | None) -> int:
    """Print one line per patch; 1 when any conflicts, else 0."""
    owner = patches.owner_of(recipe)
    dest = patches.checkout_of(settings, recipe)
    ref = ref or settings[f"{owner.name}.ref"]
    commit = sources.resolve(dest, ref, _run, sources.redact(settings[f"{owner.name}.url"]))
    verdicts = patches.check(settings, recipe, commit)
    print(f"patches of {owner.name} ({patches.patches_dir(settings) / owner.name}) on {ref} ({commit[:12]}):")
    if not verdicts:
        print("  (no patches)")
    for v in verdicts:
        print(f"  {v.state:<17} {v.patch}" + (f"  ({v.detail})" if v.detail else ""))
        for h in v.hunks:
            print(f"      {h}")
    return 1 if any(v.state == "conflicts" for v in verdicts) else 0
