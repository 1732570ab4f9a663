"""`python -m xstilts` runs the CLI."""

from xstilts.cli import main

main()
