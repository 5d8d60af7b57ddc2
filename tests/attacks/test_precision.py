"""Reduced-precision attack iterations: bfloat16 finds the points, float32 judges them."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import fortify as ft
from fortify.attacks.base import confirm_success, resolve_precision
from fortify.evaluation.merge import Merger
from fortify.evaluation.stream import evaluate_batches
from fortify.types import FortifyError


def _near_tie() -> ft.Classifier:
    """Logits (x, x * (1 + 2^-10)) for x > 0: class 1 wins in float32, a tie (class 0) in bfloat16."""
    linear = nn.Linear(1, 2, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[1.0], [1.0 + 2**-10]]))
    return ft.Classifier(linear, num_classes=2)


def test_a_success_seen_only_in_bfloat16_is_not_confirmed() -> None:
    clf, x, y = _near_tie(), torch.full((4, 1), 0.75), torch.ones(4, dtype=torch.long)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        hit = clf(x).argmax(dim=1) != y
        assert bool(hit.all()), "bfloat16 should see the tie as a misclassification"
        assert not bool(confirm_success(clf, x, hit, y, targeted=False).any())
    # outside autocast the mask is taken as it is (float32 logits computed it)
    assert torch.equal(confirm_success(clf, x, hit, y, targeted=False), hit)


@pytest.mark.parametrize(
    "make",
    [lambda p: ft.attacks.PGD(steps=5, precision=p), lambda p: ft.attacks.APGD(steps=5, precision=p)],
)
def test_bf16_attacks_report_only_what_float32_confirms(make, tiny_cnn) -> None:
    clf, x, y = tiny_cnn
    out = make("bf16").attack(clf, x[:64], y[:64], ft.Linf(0.3))
    assert out.logits is not None and out.logits.dtype == torch.float32
    exact = clf.logits(out.x_adv)
    assert torch.equal(out.logits.argmax(1), exact.argmax(1))
    assert torch.allclose(out.logits, exact)


def test_precision_is_refused_where_an_attack_cannot_and_for_unknown_names() -> None:
    with pytest.raises(FortifyError, match="float32 only"):
        ft.attacks.CW().set_precision("bf16")
    with pytest.raises(FortifyError, match="unknown precision 'fp8'"):
        ft.attacks.PGD(precision="fp8")
    with pytest.raises(FortifyError, match="unknown precision"):
        resolve_precision("half", torch.device("cpu"))
    assert resolve_precision("auto", torch.device("cpu")) in ("fp32", "bf16")
    assert "precision" not in ft.attacks.PGD().config()  # float32 configs read as before
    assert ft.attacks.PGD(precision="bf16").config()["precision"] == "bf16"


def test_evaluate_records_the_precision_and_runs_supporting_attacks_in_it(tiny_cnn) -> None:
    clf, x, y = tiny_cnn
    result = ft.evaluate(clf, x[:48], y[:48], ft.Linf(0.1), suite="quick", precision="bf16")
    assert result.precision == "bf16"
    configs = {a.name: a.config for a in result.per_attack}
    assert all(
        c.get("precision") == "bf16" for n, c in configs.items() if n.startswith(("pgd", "apgd", "fgsm"))
    )
    assert ft.evaluate(clf, x[:16], y[:16], ft.Linf(0.1), suite="quick").precision == "fp32"


def _ran_in_bf16(result: ft.Result) -> None:
    """The Result says bf16, and every FGSM / PGD / APGD record's configuration does too."""
    assert result.precision == "bf16"
    iterated = [a for a in result.per_attack if a.name.startswith(("pgd", "apgd", "fgsm"))]
    assert iterated, [a.name for a in result.per_attack]
    assert all(a.config.get("precision") == "bf16" for a in iterated), [a.config for a in iterated]


def test_sharded_evaluation_runs_every_shard_in_the_precision_asked(tiny_cnn) -> None:
    clf, x, y = tiny_cnn
    shards = ft.scale.InProcess(shards=2)
    result = ft.evaluate(
        clf, x[:48], y[:48], ft.Linf(0.1), suite="quick", batch_size=24, precision="bf16", executor=shards
    )
    _ran_in_bf16(result)
    assert result.n_samples == 48 and len(result.sections["scale"]["shards"]) == 2


def test_streamed_evaluation_runs_every_chunk_in_the_precision_asked(tiny_cnn) -> None:
    clf, x, y = tiny_cnn
    data = DataLoader(TensorDataset(x[:48], y[:48]), batch_size=16)
    result = evaluate_batches(clf, data, ft.Linf(0.1), "quick", chunk_size=24, precision="bf16")
    _ran_in_bf16(result)
    assert result.n_samples == 48 and result.sections["streaming"]["chunks"] == 2
    assert ft.evaluate(clf, data, None, ft.Linf(0.1), suite="quick", precision="bf16").precision == "bf16"


def test_sweep_refines_in_the_precision_asked_and_keeps_the_min_norm_pass_float32(tiny_cnn) -> None:
    clf, x, y = tiny_cnn
    result = ft.sweep(clf, x[:32], y[:32], ft.Linf, [0.05, 0.1], suite="quick", precision="bf16")
    assert result.precision == "bf16"
    configs = {a.name: a.config for a in result.per_attack}
    assert "precision" not in configs["fmn"], configs["fmn"]
    assert all(c.get("precision") == "bf16" for n, c in configs.items() if n.startswith("pgd@"))
    shards = ft.scale.InProcess(shards=2)
    sharded = ft.sweep(
        clf, x[:32], y[:32], ft.Linf, [0.1], suite="quick", batch_size=16, precision="bf16", executor=shards
    )
    assert sharded.precision == "bf16" and len(sharded.sections["scale"]["shards"]) == 2


def test_chunks_of_different_precision_are_not_merged(tiny_cnn) -> None:
    clf, x, y = tiny_cnn
    merger = Merger()
    merger.add(0, ft.evaluate(clf, x[:16], y[:16], ft.Linf(0.1), suite="quick"))
    part = ft.evaluate(clf, x[16:32], y[16:32], ft.Linf(0.1), suite="quick", precision="bf16")
    with pytest.raises(FortifyError, match="different precision"):
        merger.add(16, part)
