"""`python -m semsearch`: the same as the `semsearch` command."""

from semsearch.cli import main

main()
