"""Progress bars for the command line, fed by core's plain progress callbacks
(callable(done, total))."""

from __future__ import annotations

import sys
from contextlib import contextmanager

from tqdm import tqdm


@contextmanager
def progress_bar(description: str):
    bar = tqdm(desc=description, total=1, unit="step", file=sys.stderr, leave=False,
               disable=None)  # no bar when stderr is not a terminal (CI logs stay clean)

    def report(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
        bar.n = done
        bar.refresh()

    try:
        yield report
    finally:
        bar.close()
