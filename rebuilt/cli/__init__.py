"""The faces of rebuilt: the `rebuilt` program (program.py), the invoke task modules (tasks/) and
the nox session logic (nox_sessions.py). Nothing below this layer imports it.

``rebuilt.cli:main`` is the console entry point of existing installs; it is imported lazily so that
``import rebuilt.cli.tasks`` (what `inv --list` needs) does not load invoke's Program machinery.
"""


def main() -> None:
    from rebuilt.cli.program import main as run

    run()
