"""How a command line that invoke cannot use becomes one message, exit 2, with what to type instead.

invoke's parser exits 1 on an unknown flag or task (1 means "a step failed" here), shows a
traceback for a value it cannot convert (``--top abc`` for a whole-number flag), says only
``No idea what 'build.sgl-kernal' is!`` for a typo, and reads a task flag given before the task
name as one of its own core options: ``inv -p /opt/env/bin/python build.torch`` turns on a pty
(``-p``), ``-w`` warn-only, ``-f`` a configuration file. Its two parser entry points are wrapped
once per process (``install``), so every program that loads rebuilt's tasks (``inv``, ``rebuilt``)
gets the same behaviour:

- a task's flag before the task name: ``-p before the task name ...`` and the corrected command;
- an unknown task or flag: a did-you-mean from the task names or that task's flags;
- the error stays a ``ParseError``, so that shell completion (which catches it to learn what was
  typed so far) still completes a partial flag such as ``--dr``.

Only the tasks named on the command line get parser contexts (``named_only``): invoke builds the
arguments of every task from its signature, and deep-copies them on each parse, for every command,
which is most of what ``--list``, a completion and a dry run spend before any work.
"""

from __future__ import annotations

import difflib
import re
import sys

from invoke.exceptions import Exit, ParseError

HELP = ("-h", "--help")


class BadCommandLine(ParseError, Exit):
    """A mistake on the command line: printed once by invoke, exit 2; completion still sees a ParseError."""

    def __init__(self, msg: str, context=None) -> None:
        ParseError.__init__(self, msg, context)
        self.text, self.message, self._code = msg, None, 2

    def __str__(self) -> str:
        return self.text


def _program() -> str:
    from rebuilt.core.command import PROGRAM

    return PROGRAM


def _completing(argv: list[str]) -> bool:
    return "--complete" in argv[: argv.index("--") if "--" in argv else len(argv)]


# set by the program once rebuilt's namespace is loaded: its command line and every task name
_LINE: list[str] | None = None
_NAMES: frozenset[str] = frozenset()


def named_only(argv: list[str], names) -> None:
    """From now on, parser contexts are built for the tasks that ``argv`` names only."""
    global _LINE, _NAMES
    _LINE, _NAMES = list(argv), frozenset(names)


def command_line() -> list[str]:
    """The arguments after the program name, as typed."""
    return list(_LINE if _LINE is not None else sys.argv[1:])


def misplaced(argv: list[str], contexts) -> str | None:
    """A task's flag typed before the task name: what the program makes of it and the corrected command."""
    at = next((i for i, a in enumerate(argv) if a in contexts), None)
    if at is None or _completing(argv):
        return None
    task, before = contexts[argv[at]], argv[:at]
    for i, token in enumerate(before):
        flag = token.split("=", 1)[0]
        if not token.startswith("-") or flag in HELP or flag not in task.flags:
            continue
        arg = task.flags[flag]
        value = before[i + 1: i + 2] if arg.takes_value and "=" not in token else []
        rest = [a for j, a in enumerate(before) if j != i and not (value and j == i + 1)]
        rest = [a for a in rest if a.startswith("-")]  # a value left behind belonged to the program's own option
        fixed = [_program(), *rest, argv[at], token, *value, *argv[at + 1:]]
        long = next((n for n in arg.names if len(n) > 1), arg.name).replace("_", "-")
        core = _core_meaning(flag)
        return (f"rebuilt: {flag} before the task name is {core}; {task.name}'s {flag} (--{long}) goes after "
                f"the task name\n  -> {' '.join(fixed)}")
    return None


def _core_meaning(flag: str) -> str:
    from rebuilt.core.command import PROGRAM

    meanings = {"-D": "--list-depth", "-p": "--pty", "-w": "--warn-only", "-f": "--config", "-r": "--search-root"}
    if PROGRAM == "inv" and flag in meanings:
        return f"invoke's own {meanings[flag]} (write {meanings[flag]} for that)"
    return f"not an option of {_program()} itself"


def _close(word: str, choices: list[str]) -> str:
    starts = [c for c in choices if c.startswith(word)]
    close = starts[:1] if len(starts) == 1 else difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def explain(err: ParseError, contexts) -> str:
    """invoke's parse error in rebuilt's words: a did-you-mean for a mistyped task or flag."""
    text, prog = str(err), _program()
    if text.startswith("No idea what '") and text.endswith("' is!"):
        word = text[len("No idea what '"):-len("' is!")]
        ctx = err.context
        if word.startswith("-"):
            where = f"{ctx.name} has" if ctx is not None and ctx.name else f"{prog} has"
            flags = sorted(ctx.flags) if ctx is not None else []
            return (f"rebuilt: {where} no flag {word}{_close(word, flags)}\n"
                    f"  -> {prog} --help {ctx.name if ctx is not None and ctx.name else '<task>'} lists its flags")
        return (f"rebuilt: no task named {word!r}{_close(word, sorted(_NAMES or contexts))}\n"
                f"  -> {prog} --list shows every task")
    needs = re.match(r"Flag <Argument: ([\w-]+).*> needed value and was not given one!$", text)
    if needs:
        text = f"--{needs.group(1).replace('_', '-')} needs a value"
    return f"rebuilt: {text}\n  -> {prog} --help <task> lists its flags"


def _only_named(parser, argv: list[str]):
    """A shallow copy of ``parser`` that knows only the tasks named in ``argv`` (all a parse needs)."""
    import copy

    from invoke.util import Lexicon

    small = copy.copy(parser)
    small.contexts = Lexicon()
    for token in argv:
        if token in parser.contexts and token not in small.contexts:
            small.contexts[token] = parser.contexts[token]
    return small


def install() -> None:
    """Wrap invoke's parser once per process (every program that loads the tasks gets it)."""
    from invoke.collection import Collection
    from invoke.parser import Parser, ParserContext
    from invoke.parser.argument import Argument

    if getattr(Parser.parse_argv, "_rebuilt", False):
        return
    plain_parse, plain_set, plain_contexts = Parser.parse_argv, Argument.set_value, Collection.to_contexts

    def to_contexts(self, ignore_unknown_help=None):
        if _LINE is None or set(self.task_names) != _NAMES:  # not rebuilt's root namespace in a program run
            return plain_contexts(self, ignore_unknown_help)
        named = [w.split("=", 1)[-1] for w in _LINE]  # `--help=build.torch` names a task too
        names = self.task_names
        return [ParserContext(name=n, aliases=names[n], args=self[n].get_arguments(ignore_unknown_help=ignore_unknown_help))
                for n in sorted({n for n in named if n in names})]

    def set_value(self, value, cast=True):
        try:
            return plain_set(self, value, cast)
        except (TypeError, ValueError):
            flag = "--" + self.name.replace("_", "-")
            kind = {int: "a whole number", float: "a number"}.get(self.kind, getattr(self.kind, "__name__", "?"))
            raise ParseError(f"{flag}: expected {kind}, got {value!r}") from None

    def parse_argv(self, argv):
        if self.contexts:  # the tasks' pass (the core options' pass has none)
            wrong = misplaced(command_line(), self.contexts)
            if wrong:
                raise BadCommandLine(wrong)
        try:
            return plain_parse(_only_named(self, argv) if self.contexts else self, argv)
        except BadCommandLine:
            raise
        except ParseError as err:
            raise BadCommandLine(explain(err, self.contexts), err.context) from None

    parse_argv._rebuilt = True
    Parser.parse_argv, Argument.set_value, Collection.to_contexts = parse_argv, set_value, to_contexts
