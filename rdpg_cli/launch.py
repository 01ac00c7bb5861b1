"""The ``rdpg`` console script: stop signals are rdpg's from its first instruction. Importing the command line
(Typer, Rich, the commands' modules) takes a few tenths of a second; a Ctrl-C there printed Python's
KeyboardInterrupt traceback and a SIGTERM killed the process without a word."""

from __future__ import annotations

import contextlib
import sys


def main() -> None:
    from rdpg_cli.signals import exit_code_of, interrupt_on_stop_signals

    interrupt_on_stop_signals()
    try:
        from rdpg_cli.cli import main as run_command_line

        run_command_line()
    except KeyboardInterrupt as exc:  # before the command line's own handling starts: nothing done to undo
        with contextlib.suppress(Exception):  # stderr may be closed (`2>&-`)
            print("aborted", file=sys.stderr, flush=True)
        sys.exit(exit_code_of(exc))
