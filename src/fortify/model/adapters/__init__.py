"""Loaders that turn models from other frameworks into fortify models: scikit-learn and ONNX."""

from fortify.model.adapters.onnx import classifier_from_onnx, from_onnx
from fortify.model.adapters.sklearn import from_sklearn

__all__ = ["from_sklearn", "from_onnx", "classifier_from_onnx"]
