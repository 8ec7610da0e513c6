"""The `alexnet` command's entry point: a Ctrl-C while PyTorch is still loading ends as any other Ctrl-C
(one line, status 130), not with an import traceback."""

from __future__ import annotations

import sys


def main() -> int:
    try:
        from .main import main as run
    except KeyboardInterrupt:
        sys.stderr.write("alexnet: interrupted\n")
        return 130
    return run()
