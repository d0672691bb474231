"""The `rebuilt` command: the same tasks as `inv` in this checkout, from any folder.

invoke documents this way of shipping a task library: a ``Program`` with the library's own
namespace, name and configuration prefix (so invoke itself reads ``rebuilt.yaml`` files and
``REBUILT_*`` variables, never a malformed ``invoke.yaml`` of an unrelated project).
rebuilt's own settings still come from ``invoke.yaml`` (key ``rebuilt:``), found in the project
folder (rebuilt/core/project.py) whatever the current folder is.

    rebuilt --list
    rebuilt build.sgl-kernel --dry-run
    rebuilt --print-completion-script bash > ~/.local/share/bash-completion/completions/rebuilt
"""

from __future__ import annotations

import sys

from invoke import Config, Program

from rebuilt import __version__


class RebuiltConfig(Config):
    prefix = "rebuilt"
    file_prefix = "rebuilt"
    env_prefix = "REBUILT_INVOKE"


class RebuiltProgram(Program):
    """invoke's Program with rebuilt's namespace, built when the command line is parsed."""

    def parse_collection(self) -> None:
        from rebuilt.cli.tasks import namespace
        from rebuilt.errors import RebuiltError

        try:
            self.namespace = namespace()
        except RebuiltError as err:
            print(f"rebuilt: {err.render()}", file=sys.stderr)
            raise SystemExit(err.exit_code) from None
        super().parse_collection()


program = RebuiltProgram(name="rebuilt", binary="rebuilt", binary_names=["rebuilt"], version=__version__,
                         config_class=RebuiltConfig, namespace=None)


def _check_config_files() -> None:
    """invoke merges /etc/rebuilt.yaml and ~/.rebuilt.yaml into its configuration: a file holding a list
    (or ``tasks: 5``) would be a traceback inside invoke for every command, so each is checked first."""
    from pathlib import Path

    from rebuilt.core.settings import read_invoke_file
    from rebuilt.errors import RebuiltError

    for folder, stem in ((Path("/etc"), "rebuilt"), (Path.home(), ".rebuilt")):
        for suffix in (".yaml", ".yml", ".json"):
            path = folder / f"{stem}{suffix}"
            if path.is_file():
                try:
                    read_invoke_file(path)
                except RebuiltError as err:
                    print(f"rebuilt: {err.render()}", file=sys.stderr)
                    raise SystemExit(err.exit_code) from None


def main() -> None:
    from invoke.vendor import yaml

    _check_config_files()
    try:
        program.run()
    except BrokenPipeError:  # `rebuilt --list | head`
        sys.stderr.close()
        raise SystemExit(0) from None
    except yaml.YAMLError as exc:  # invoke's own config files (~/.rebuilt.yaml, /etc/rebuilt.yaml)
        mark = getattr(exc, "problem_mark", None)
        where = f"{mark.name}: line {mark.line + 1}" if mark else "a rebuilt.yaml configuration file"
        print(f"rebuilt: {where}: malformed YAML: {getattr(exc, 'problem', exc)}\n"
              "  -> fix the file (or move it away), then run the command again", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
