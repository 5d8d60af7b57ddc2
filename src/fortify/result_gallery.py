"""Moved to ``fortify.result.gallery``; this module keeps the old import path working."""

from fortify.result.gallery import GalleryEntry, decode_pixels, encode_pixels

__all__ = ["GalleryEntry", "encode_pixels", "decode_pixels"]
