"""rebuilt's invoke entry point: `inv --list` shows every task."""

from rebuilt.tasks import namespace

ns = namespace()
