"""Models for the scale tests: one whose worker process dies the first time it runs on a worker."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from torch import Tensor, nn


class DiesOnce(nn.Module):
    """``inner``, except that the first forward pass in a process other than the one that built it
    kills that process (SIGKILL, as the OOM killer would) after leaving ``marker``; later passes,
    in any process, run normally. Runs in the building process never die."""

    def __init__(self, inner: nn.Module, marker: Path) -> None:
        super().__init__()
        self.inner = inner
        self.marker = str(marker)
        self.home = os.getpid()

    def forward(self, x: Tensor) -> Tensor:
        if os.getpid() != self.home and not os.path.exists(self.marker):
            Path(self.marker).write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return self.inner(x)
