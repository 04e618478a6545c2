"""`python -m lookalike` runs the command line."""

from .cli.main import main

main()
