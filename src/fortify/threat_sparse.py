"""Moved to ``fortify.threat.sparse``; this module keeps the old import path working."""

from fortify.threat.sparse import L0, pixel_magnitude

__all__ = ["L0", "pixel_magnitude"]
