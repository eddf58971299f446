"""Progress for long commands: a bar on a terminal, periodic log lines otherwise."""

import time
from typing import TextIO

BAR_WIDTH = 30
BAR_INTERVAL = 0.2  # seconds between redraws of the bar
LOG_INTERVAL = 5.0  # seconds between log lines when output is not a terminal


class Progress:
    """Reports `done` posts (and, when the total size is known, the share of input read)."""

    def __init__(self, stream: TextIO, total_bytes: int | None = None, label: str = "posts"):
        self.stream = stream
        self.total_bytes = total_bytes or None
        self.label = label
        self.is_terminal = stream.isatty()
        self.started = time.monotonic()
        self.last_shown = 0.0
        self.drawn = False

    def update(self, done: int, bytes_done: int | None = None) -> None:
        now = time.monotonic()
        interval = BAR_INTERVAL if self.is_terminal else LOG_INTERVAL
        if now - self.last_shown < interval:
            return
        self.last_shown = now
        self.show(done, bytes_done, now)

    def show(self, done: int, bytes_done: int | None, now: float) -> None:
        rate = done / max(now - self.started, 1e-9)
        text = f"{done:,} {self.label}, {rate:,.0f}/s"
        share = None
        if self.total_bytes and bytes_done is not None:
            share = min(bytes_done / self.total_bytes, 1.0)
        if self.is_terminal:
            if share is not None:
                filled = int(share * BAR_WIDTH)
                text = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {share:4.0%} {text}"
            self.stream.write(f"\r{text}\033[K")
            self.drawn = True
        else:
            if share is not None:
                text = f"{share:.0%} read, {text}"
            self.stream.write(f"progress: {text}\n")
        self.stream.flush()

    def finish(self) -> None:
        """End the bar's line so the next output starts on a fresh one."""
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False
