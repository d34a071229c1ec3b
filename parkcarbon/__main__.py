"""``python -m parkcarbon`` runs the command line."""

from parkcarbon.cli import main

main()
