"""Moved to ``fortify.model`` (``BlackBox``) and ``fortify.model.adapters`` (the loaders); this module keeps
the old import path working."""

from fortify.model.adapters import classifier_from_onnx, from_onnx, from_sklearn
from fortify.model.blackbox import BlackBox, Output

__all__ = ["BlackBox", "Output", "from_sklearn", "from_onnx", "classifier_from_onnx"]
