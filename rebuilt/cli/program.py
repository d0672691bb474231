"""The `rebuilt` command: the same tasks as `inv` in this checkout, from any folder.

invoke documents this way of shipping a task library: a ``Program`` with the library's own
namespace, name and configuration prefix (so invoke itself reads ``rebuilt.yaml`` files and
``REBUILT_*`` variables, never a malformed ``invoke.yaml`` of an unrelated project).
rebuilt's own settings still come from ``invoke.yaml`` (key ``rebuilt:``), found in the project
folder (rebuilt/core/project.py) whatever the current folder is.

    rebuilt --list
    rebuilt build.sgl-kernel --dry-run
    mkdir -p ~/.local/share/bash-completion/completions
    rebuilt --print-completion-script bash > ~/.local/share/bash-completion/completions/rebuilt

The program's own options never take a letter that a task flag uses: invoke's ``-D``
(``--list-depth``), ``-p`` (``--pty``), ``-w`` (``--warn-only``) and ``-f`` (``--config``) are long
only here, and invoke's collection options (``-c``, ``-r``, ``--no-dedupe``) do not exist, so a task
flag typed before the task name is one message saying where it goes (rebuilt/cli/tasks/_argv.py).
"""

from __future__ import annotations

import sys

from invoke import Config, Exit, Program

from rebuilt import __version__
from rebuilt.cli.invhook import reader_gone


class RebuiltConfig(Config):
    prefix = "rebuilt"
    file_prefix = "rebuilt"
    env_prefix = "REBUILT_INVOKE"


class RebuiltProgram(Program):
    """invoke's Program with rebuilt's namespace, built when the command line is parsed."""

    def core_args(self):
        from rebuilt.cli.tasks import SHORT_FLAGS

        taken = set(SHORT_FLAGS.values())
        args = super().core_args()
        for arg in args:
            arg.names = tuple(n for n in arg.names if len(n) > 1 or n not in taken)
        return args

    def task_args(self):
        return []  # the namespace is rebuilt's own: no collection to search for or name

    def run(self, argv=None, exit: bool = True) -> None:
        from rebuilt.core import command

        command.PROGRAM = "rebuilt"  # messages name the commands of this program
        super().run(argv, exit)

    def parse_core(self, argv) -> None:
        self.normalize_argv(argv)
        self.parse_core_args()
        shell = self.args["print-completion-script"].value
        if shell:
            from rebuilt.cli.completion import script

            print(script(shell, self.binary_names[0]), end="")
            raise Exit
        super().parse_core(self.argv)

    def parse_cleanup(self) -> None:
        from invoke.exceptions import ParseError

        from rebuilt.cli.tasks._argv import BadCommandLine, explain

        if self.args.complete.value:
            self._complete()
        try:
            super().parse_cleanup()
        except BadCommandLine:
            raise
        except ParseError as err:  # `rebuilt --help build.sgl-kernal`
            raise BadCommandLine(explain(err, self.parser.contexts)) from None

    def _complete(self) -> None:
        from rebuilt.cli.completion import candidates

        words = self.argv[self.argv.index("--") + 1:] if "--" in self.argv else []
        contexts = self.parser.contexts  # the tasks the words name (rebuilt/cli/tasks/_argv.py)
        print("\n".join(candidates(words, self.initial_context, contexts, self.collection.task_names)))
        raise Exit

    def parse_collection(self) -> None:
        from rebuilt.cli.tasks import _argv, namespace
        from rebuilt.errors import RebuiltError

        try:
            self.namespace = namespace()
            _argv.named_only(self.argv[1:], self.namespace.task_names)
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

    for folder, stem in ((Path("/etc"), "rebuilt"), (Path.home(), ".rebuilt")):
        for suffix in (".yaml", ".yml", ".json"):
            path = folder / f"{stem}{suffix}"
            if path.is_file():
                from rebuilt.core.invokefile import read_invoke_file  # only when there is a file (start-up time)
                from rebuilt.errors import RebuiltError

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
        reader_gone()
    except yaml.YAMLError as exc:  # invoke's own config files (~/.rebuilt.yaml, /etc/rebuilt.yaml)
        mark = getattr(exc, "problem_mark", None)
        where = f"{mark.name}: line {mark.line + 1}" if mark else "a rebuilt.yaml configuration file"
        print(f"rebuilt: {where}: malformed YAML: {getattr(exc, 'problem', exc)}\n"
              "  -> fix the file (or move it away), then run the command again", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
