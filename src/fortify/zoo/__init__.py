"""Reference architectures and safe model files (safetensors + JSON metadata)."""

from fortify.zoo.architectures import create, names, register
from fortify.zoo.io import load, read_metadata, save

__all__ = ["create", "names", "register", "save", "load", "read_metadata"]
