"""Moved to ``fortify.model`` (``BlackBox``) and ``fortify.model.adapters`` (the loaders); this module keeps
the old import path working, with ``from_url`` (the service's OIP v2 client, ``fortify.service.client``)."""

from fortify.model.adapters import classifier_from_onnx, from_onnx, from_sklearn
from fortify.model.blackbox import BlackBox, Output
from fortify.service.client import from_url

__all__ = ["BlackBox", "Output", "from_sklearn", "from_onnx", "classifier_from_onnx", "from_url"]
