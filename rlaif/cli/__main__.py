"""`python -m rlaif.cli`."""

from rlaif.cli.main import main

main()
