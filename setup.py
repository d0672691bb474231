"""Everything is declared in pyproject.toml; this adds one file to the wheel: rebuilt-inv.pth.

The .pth file is read by every interpreter of the environment at start-up (Python's `site` module);
its one line looks at the command line and does nothing unless it runs `inv`/`invoke` (or `python -m
invoke`); then rebuilt/cli/invhook.py checks that the tasks invoke is about to load are rebuilt's and
only then wraps invoke's parse of its own options (`inv -D ...`/`-r ...` before a task name). It is
written into the regular wheel by build_py and into the editable wheel (pip install -e .) beside
setuptools' own .pth; pip uninstall removes it with the rest.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PTH = "rebuilt-inv.pth"
HOOK = (
    "import sys; exec('try:\\n import rebuilt.cli.invhook as h\\n h.install()\\nexcept Exception:\\n pass') "
    "if any(a.rsplit('/', 1)[-1] in ('inv', 'invoke') for a in getattr(sys, 'orig_argv', [])[1:3]) else None\n"
)


class build_py_with_pth(build_py):
    def run(self):
        super().run()
        if not getattr(self, "editable_mode", False):
            (Path(self.build_lib) / PTH).write_text(HOOK)

    def get_outputs(self, include_bytecode=True):
        outputs = list(super().get_outputs(include_bytecode))
        return outputs if getattr(self, "editable_mode", False) else [*outputs, str(Path(self.build_lib) / PTH)]


cmdclass = {"build_py": build_py_with_pth}

try:  # setuptools >= 64: PEP 660 editable wheels
    from setuptools.command.editable_wheel import editable_wheel

    class _WithHook:
        """setuptools' editable strategy, plus the hook file in the editable wheel."""

        def __init__(self, strategy):
            self.strategy = strategy

        def __enter__(self):
            self.strategy.__enter__()
            return self

        def __exit__(self, *exc):
            return self.strategy.__exit__(*exc)

        def __call__(self, wheel, files, mapping):
            self.strategy(wheel, files, mapping)
            wheel.writestr(PTH, HOOK.encode())

    class editable_wheel_with_pth(editable_wheel):
        def _select_strategy(self, *args, **kwargs):  # a private method: if it is renamed, no hook, no harm
            return _WithHook(super()._select_strategy(*args, **kwargs))

    cmdclass["editable_wheel"] = editable_wheel_with_pth
except ImportError:
    pass

setup(cmdclass=cmdclass)
