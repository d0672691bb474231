"""`inv torch.backup|restore|check`: never lose the environment's torch."""

from __future__ import annotations

from invoke import Collection, task

from rebuilt.cli.tasks._entry import entry
from rebuilt.cli.tasks.common import BUILD_HELP, resolve

H_PY = BUILD_HELP["python"]


def _backups(settings):
    from pathlib import Path

    return Path(settings["backup_dir"]) if settings["backup_dir"] else settings.workdir() / "backups"


@task(help={"dist": "distribution to back up (default torch)", "output": "folder for the wheel (default "
            "<workdir>/backups or the backup_dir setting)",
            "fast": "compress less for speed (ISA-L level 0; zlib level 1 without the isal wheel)", "python": H_PY})
@entry
def backup(c, dist="torch", output=None, fast=False, python=None):
    """Write a real wheel of the installed torch (or --dist) that pip can reinstall."""
    import time

    from rebuilt.build.wheel import backup as bk
    from rebuilt.core import signals
    from rebuilt.core.command import command
    from rebuilt.errors import InputError

    settings = resolve(python=python)
    bk.clean_stale(output or _backups(settings))  # what a killed backup left
    start = time.monotonic()
    with signals.terminate_as_interrupt():  # SIGTERM/SIGHUP: the .part is removed on the way out
        try:
            path = bk.backup(settings.python(), dist, output or _backups(settings), fast=fast)
        except InputError as err:
            if "is not installed" not in str(err):
                raise
            raise InputError(str(err), hint=f"a backup copies an installed {dist}: install or build it first "
                                            f"({command('build.stack --python ' + settings.python())} builds "
                                            f"the stack's), or name another interpreter with --python") from None
    print(f"{path} ({path.stat().st_size / 1e6:.0f} MB in {time.monotonic() - start:.1f}s)")


@task(help={"wheel": "wheel to reinstall (default: the newest backup of --dist)", "dist": "distribution "
            "(default torch)", "python": H_PY, "workdir": BUILD_HELP["workdir"]})
@entry
def restore(c, wheel=None, dist="torch", python=None, workdir=None):
    """Verify a backup wheel, reinstall it (--no-deps --force-reinstall) and verify the result."""
    from rebuilt.build import journal
    from rebuilt.build.wheel import backup as bk
    from rebuilt.build.wheel import restore as rs
    from rebuilt.core import worklock
    from rebuilt.errors import InputError

    settings = resolve(python=python, workdir=workdir)
    folder = _backups(settings)
    with worklock.workdir_lock(settings.workdir()):  # not while a build (or what a killed one left) runs
        bk.clean_stale(folder)
        if not wheel:
            found = bk.backups_of(folder, dist)
            if not found:
                raise InputError(f"no backup of {dist} in {folder}", hint="inv torch.backup first")
            wheel = str(found[0])
        info = rs.restore(settings.python(), wheel, say=print)
        print(f"restored {info.name} {info.version} from {wheel}; version and {len(info.record)} file hashes "
              f"verified")
        pending = journal.read(settings.workdir())
        if pending and pending["python"] == settings.python():
            journal.recover(settings.workdir(), print, done={info.name})  # what a killed build left


@task(help={"dist": "distribution (default torch)", "python": H_PY, "workdir": BUILD_HELP["workdir"]})
@entry
def check(c, dist="torch", python=None, workdir=None):
    """Show the environment's torch: version, CUDA, path, how it was installed, its backup."""
    from rebuilt.build import journal
    from rebuilt.build.wheel import backup as bk
    from rebuilt.build.wheel import identity
    from rebuilt.errors import InputError

    settings = resolve(python=python, workdir=workdir)
    bk.clean_stale(_backups(settings))
    try:
        rows = identity.report(settings.python(), dist, _backups(settings))
    except InputError as err:
        raise _not_installed(err, settings, dist) from None
    for field, value in rows:
        print(f"{field:<13} {value}")
    pending = journal.read(settings.workdir())
    if pending:
        print(f"{'guard':<13} step {pending['step']} of a killed run may have changed "
              f"{', '.join(pending['dists'])} in {pending['python']}; the next build (or inv torch.restore) "
              f"checks and restores it")


def _python_tag(python: str) -> str | None:
    """``cp311`` for a CPython 3.11 interpreter (what a wheel built from it is tagged with)."""
    from rebuilt.core import runner

    proc = runner.capture([python, "-c", "import sys; print(f'cp{sys.version_info[0]}{sys.version_info[1]}')"],
                          timeout=60)
    return proc.stdout.strip() if proc.returncode == 0 else None


def _not_installed(err, settings, dist: str):
    """torch is gone: the error names the newest backup this interpreter can install, and the command."""
    from rebuilt.build.wheel import backup as bk
    from rebuilt.core.command import command
    from rebuilt.errors import InputError

    if "is not installed" not in str(err):
        return err
    folder, python = _backups(settings), settings.python()
    tag = _python_tag(python)
    found = [w for w in bk.backups_of(folder, dist) if tag is None or w.name.split("-")[2:3] in ([tag], ["py3"])]
    if not found:
        return InputError(f"{dist} is not installed in {python}, and {folder} holds no backup of it"
                          f"{f' for {tag}' if tag else ''}",
                          hint=f"install it, or build it ({command('build.' + dist)}) if rebuilt builds it")
    restore = command(f"torch.restore --wheel {found[0]} --python {python}")
    others = f" ({len(found) - 1} older in {folder})" if len(found) > 1 else ""
    return InputError(f"{dist} is not installed in {python}; the newest backup that fits it is {found[0]}{others}",
                      hint=f"bring it back: {restore}")


ns = Collection("torch", backup, restore, check)
