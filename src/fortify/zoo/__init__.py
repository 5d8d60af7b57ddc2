"""Reference architectures, safe model files (safetensors + JSON metadata) and the robust models that
ship with fortify (``pretrained``, ``available``)."""

from fortify.zoo.architectures import create, names, register
from fortify.zoo.io import load, read_metadata, save
from fortify.zoo.pretrained import Pretrained, available, pretrained

__all__ = [
    "create",
    "names",
    "register",
    "save",
    "load",
    "read_metadata",
    "pretrained",
    "available",
    "Pretrained",
]
