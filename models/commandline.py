"""The argument parser every model job uses (``layerscope train / evaluate / dissect / reliance``).

A usage error ends as every failure of the ``layerscope`` command does: one line on stderr,
``layerscope: error: <what went wrong>; see `layerscope <job> --help```, and exit status 2,
instead of argparse's usage block.
"""

from __future__ import annotations

import argparse
from typing import NoReturn


class Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line and status 2."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.split()[0]
        self.exit(2, f"{command}: error: {' '.join(message.split())}; see `{self.prog} --help`\n")

