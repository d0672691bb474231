"""A role's log writer: ``python -m rebuilt.tools.serve.logpipe -- ARGV...`` runs ARGV and writes its output,
secrets masked, to this process's stdout (the role's log file).

The secret values arrive in ``REBUILT_SERVE_REDACT`` (a JSON list), which is removed from
the environment before ARGV starts: they never appear on a command line. The process
runs as the leader of the role's session, so ``serve.down`` signals reach ARGV too;
this process keeps writing until ARGV's output ends and exits with ARGV's status.
"""

from __future__ import annotations

import json
import os
import sys

ENV = "REBUILT_SERVE_REDACT"


def main(argv: list[str]) -> int:
    from rebuilt.core import runner
    from rebuilt.core.secret import Redactor

    if "--" not in argv or argv.index("--") == len(argv) - 1:
        print("usage: python -m rebuilt.tools.serve.logpipe -- PROGRAM [ARGS...]", file=sys.stderr)
        return 2
    command = argv[argv.index("--") + 1:]
    env = dict(os.environ)
    red = Redactor(json.loads(env.pop(ENV, "[]") or "[]"))
    out = sys.stdout.buffer

    def sink(raw: bytes) -> None:
        out.write(red(raw.decode("utf-8", "replace")).encode("utf-8"))
        out.flush()

    return runner.pipe_lines(command, env=env, sink=sink)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
