"""The core: where the project is, settings, recipes (their schema), conditions, the machine probe,
the runner (the one place that starts processes), files, text and secrets.

It knows no build, no tool and no CLI: everything else imports it, it imports nothing above it.
"""
