"""The ``fazai`` console script: ``fazai version`` answers before anything heavy is imported."""

from __future__ import annotations

import sys


def main() -> None:
    """Entry point: the version at once, everything else through :func:`fazai.cli.main.main`."""
    if sys.argv[1:] in (["version"], ["--version"]):
        from fazai import __version__

        print(__version__)
        return
    from fazai.cli.main import main as full_main

    full_main()
