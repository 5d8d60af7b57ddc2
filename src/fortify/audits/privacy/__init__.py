"""Privacy audits: membership inference with ROC summaries at low false-positive rates, and model
inversion (class representatives from the model alone, compared with the class means).

>>> from fortify.audits import privacy
>>> mi = privacy.membership_inference(clf, members=(x_in, y_in), non_members=(x_out, y_out), attack="loss")
>>> mi.auc, mi.tpr_at_fpr[0.001], mi.tpr_at_fpr[0.01]
>>> inv = privacy.model_inversion(clf, reference=(x_in, y_in), steps=300)
>>> inv.images, inv.identified, inv.to_dict()          # the Result section "inversion"
"""

from fortify.audits.privacy.inversion import Inversion, model_inversion
from fortify.audits.privacy.membership import ATTACKS, membership_inference
from fortify.audits.privacy.roc import LOW_FPRS, MembershipScore, summarise

__all__ = [
    "membership_inference",
    "MembershipScore",
    "summarise",
    "ATTACKS",
    "LOW_FPRS",
    "model_inversion",
    "Inversion",
]
