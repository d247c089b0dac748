"""The ``fazai`` console script: ``version``, ``--help`` and ``sessions`` answer before anything heavy
is imported (see :mod:`fazai.cli.fast`); everything else goes to the Typer app."""

from __future__ import annotations

import sys


def main() -> None:
    """Entry point: the version at once, everything else through :func:`fazai.cli.main.main`."""
    args = sys.argv[1:]
    if args in (["version"], ["--version"]):
        from fazai import __version__

        print(__version__)
        return
    if args in (["--help"], ["-h"]):
        from fazai.cli.fast import help_text

        print(help_text())
        return
    if args[:1] == ["sessions"]:
        from fazai.cli.fast import sessions

        if sessions(args[1:]):
            return
    from fazai.cli.main import main as full_main

    full_main()
