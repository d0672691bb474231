"""`inv cache.stats` and `inv cache.clear`: the compile cache (ccache), local or shared."""

from __future__ import annotations

from invoke import Collection, task

from rebuilt.cli.tasks._entry import entry
from rebuilt.cli.tasks.common import BUILD_HELP, resolve


@task(help={"workdir": BUILD_HELP["workdir"], "set_": BUILD_HELP["set_"]}, iterable=["set_"])
@entry
def stats(c, workdir=None, set_=None):
    """Show the hit rate of the last build and of the whole cache."""
    from rebuilt.build.features import ccache
    from rebuilt.core.secret import redact

    settings = resolve(workdir=workdir, set_=set_)
    wd = settings.workdir()
    print(f"cache     {ccache.cache_dir(settings, wd)} (max {settings['ccache.max_size']}; "
          f"{'enabled' if settings['ccache.enabled'] else 'disabled: --set ccache.enabled=true'})")
    if settings["ccache.remote"]:
        print(f"remote    {redact(settings['ccache.remote'])}")
    last = ccache.last(wd)
    print(f"last      {last['recipe']} ({last['run_id']}): {ccache.summary(last['stats'])}" if last
          else "last      no build with ccache yet")
    overall = ccache.stats(ccache.env_for(settings, wd))
    print(f"overall   {ccache.summary(overall)}; {overall.get('files_in_cache', 0)} files, "
          f"{overall.get('cache_size_kibibyte', 0) / 1024:.1f} MiB")


@task(help={"workdir": BUILD_HELP["workdir"], "set_": BUILD_HELP["set_"]}, iterable=["set_"])
@entry
def clear(c, workdir=None, set_=None):
    """Empty the local compile cache and zero its statistics (remote storage is left alone)."""
    from rebuilt.build.features import ccache

    settings = resolve(workdir=workdir, set_=set_)
    print(ccache.clear(settings, settings.workdir()))


ns = Collection("cache", stats, clear)
