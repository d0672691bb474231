"""`python -m rebuilt.cli`: the `rebuilt` program."""

from rebuilt.cli import main

main()
