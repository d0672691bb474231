"""Shell completion for the `rebuilt` program: the scripts for bash, zsh and fish, and the candidates.

invoke's own scripts hand the completer the whole line as one string, so it cannot tell the word
being completed from the words before it (``--stack <TAB>`` and ``--stack<TAB>`` look the same),
and a partial flag (``--dr``) used to end in a parse error printed into the line. Here the shell
passes the words up to the cursor, the last one being the word being typed (possibly empty), and
``rebuilt --complete -- <words>`` prints the candidates that start with it: task names, the
current task's flags (or the program's own options before a task), and the values of
``--stack``, ``--profile``, ``--recipe`` and ``--print-completion-script``. No candidate lets the
shell complete file names (``--python``, ``--workdir``, ``--output``).

Install (the folders may not exist yet):

    mkdir -p ~/.local/share/bash-completion/completions
    rebuilt --print-completion-script bash > ~/.local/share/bash-completion/completions/rebuilt
"""

from __future__ import annotations

SHELLS = ("bash", "zsh", "fish")

BASH = """# bash completion for {prog}: {prog} --print-completion-script bash > <completions folder>/{prog}
_{fn}_complete() {{
    local IFS=$'\\n'
    COMPREPLY=( $({prog} --complete -- "${{COMP_WORDS[@]:0:COMP_CWORD+1}}" 2>/dev/null) )
}}
complete -F _{fn}_complete -o default {prog}
"""

ZSH = """#compdef {prog}
# zsh completion for {prog}: {prog} --print-completion-script zsh > <a folder on $fpath>/_{prog}
_{fn}() {{
    local -a candidates
    candidates=( ${{(f)"$({prog} --complete -- "${{(@)words[1,CURRENT]}}" 2>/dev/null)"}} )
    if (( ${{#candidates}} )); then
        compadd -Q -- "${{candidates[@]}}"
    else
        _files
    fi
}}
if [[ "${{zsh_eval_context[-1]}}" == loadautofunc ]]; then
    _{fn} "$@"
else
    compdef _{fn} {prog}
fi
"""

FISH = """# fish completion for {prog}: {prog} --print-completion-script fish > ~/.config/fish/completions/{prog}.fish
function __{fn}_complete
    {prog} --complete -- (commandline -opc) (commandline -ct) 2>/dev/null
end
complete --command {prog} --arguments '(__{fn}_complete)'
"""


def script(shell: str, prog: str) -> str:
    """The completion script of ``shell`` for the program ``prog``."""
    from rebuilt.cli.tasks._argv import BadCommandLine

    templates = {"bash": BASH, "zsh": ZSH, "fish": FISH}
    if shell not in templates:
        raise BadCommandLine(f"rebuilt: no completion script for {shell!r}\n  -> choose one of: {', '.join(SHELLS)}")
    return templates[shell].format(prog=prog, fn=prog.replace("-", "_"))


def _values(flag_name: str) -> list[str] | None:
    """Candidates for the value of a flag or positional argument, None when files fit better."""
    from rebuilt.cli.tasks import _catalog

    known = {"stack": _catalog.stack_names, "profile": _catalog.profile_names, "recipe": _catalog.recipe_names,
             "print_completion_script": lambda: list(SHELLS)}
    fn = known.get(flag_name.lstrip("-").replace("-", "_"))
    return fn() if fn else None


def candidates(words: list[str], core, contexts, names) -> list[str]:
    """What may follow ``words[:-1]`` and starts with ``words[-1]``: ``core`` holds the program's own
    options, ``contexts`` (name -> parser context) at least the tasks the words name, ``names`` every task."""
    words = words[1:] or [""]  # the program's name
    before, cur = words[:-1], words[-1]
    if before and before[-1] == "=":  # bash splits --stack=aiak at the '='
        before = before[:-1]
    ctx = next((contexts[w] for w in reversed(before) if w in contexts), None)
    here = ctx or core
    prev = before[-1] if before else ""
    if prev.startswith("-") and prev in here.flags and here.flags[prev].takes_value:
        found = _values(here.flags[prev].name) or []
    elif cur.startswith("-"):
        found = sorted(n for n in here.flag_names() if n.startswith("--") or cur == "-")
    else:
        found = [] if ctx is None else [v for a in ctx.missing_positional_args for v in (_values(a.name) or [])]
        found += sorted(names)
    return [c for c in dict.fromkeys(found) if c.startswith(cur)]
