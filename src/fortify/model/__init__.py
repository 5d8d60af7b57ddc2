"""The models every attack, evaluation, defense and certificate talks to.

``Classifier`` (white box: a PyTorch module with its input space made explicit), ``BlackBox`` (scores or
labels only, every query counted) and, in ``adapters``, loaders for scikit-learn and ONNX models.
"""

from fortify.model.blackbox import BlackBox, Output
from fortify.model.classifier import DEFAULT_BATCH_SIZE, Classifier, check_bounds, check_inputs

__all__ = ["Classifier", "BlackBox", "Output", "DEFAULT_BATCH_SIZE", "check_bounds", "check_inputs"]
