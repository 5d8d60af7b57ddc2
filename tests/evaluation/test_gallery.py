"""The Result's gallery: the points the evaluation itself judged, few, bounded, spread over classes."""

from __future__ import annotations

import pytest
import torch

import fortify as ft
from fortify.evaluation import SuiteEntry
from fortify.evaluation.gallery import MAX_ENTRIES, Gallery


class Recorded:
    """A real attack whose every output this test keeps, to compare with what the Result stored."""

    def __init__(self, attack: ft.attacks.Attack) -> None:
        self.inner = attack
        self.points: list[torch.Tensor] = []

    def attack(self, clf, x, y, threat):
        out = self.inner.attack(clf, x, y, threat)
        self.points.append(out.x_adv.detach().clone())
        return out

    def config(self):
        return self.inner.config()


@pytest.mark.parametrize("threat", [ft.Linf(0.2), ft.L2(1.0)], ids=["linf", "l2"])
def test_the_gallery_holds_the_points_the_evaluation_judged(tiny_cnn, threat):
    clf, x, y = tiny_cnn
    x, y = x[:40], y[:40]
    pgd = Recorded(ft.attacks.PGD(steps=10, seed=1))
    result = ft.evaluate(clf, x, y, threat, suite=[SuiteEntry("pgd", pgd, "all")], batch_size=64)
    attacked = [s.index for s in result.samples if s.clean_correct]  # one batch, in this order
    found = pgd.points[0]
    broken = {s.index: s for s in result.samples if s.broken_by}
    assert result.gallery is not None and len(result.gallery) == min(MAX_ENTRIES, len(broken)) > 0
    for entry in result.gallery:
        record = broken[entry.index]
        assert (entry.attack, entry.adv_pred, entry.perturbation_norm) == (
            record.broken_by,
            record.adv_pred,
            record.perturbation_norm,
        )
        assert (entry.label, entry.clean_pred, entry.shape) == (record.label, record.clean_pred, [1, 8, 8])
        clean, adv = entry.images()
        assert torch.equal(clean, x[entry.index]) and torch.equal(adv, found[attacked.index(entry.index)])
        assert int(clf.predict(adv[None])) == entry.adv_pred != entry.label
        assert float(threat.norm_of((adv - clean)[None])) == pytest.approx(entry.perturbation_norm)
        assert entry.perturbation_norm <= threat.eps * (1 + 1e-5)


def test_the_gallery_survives_a_json_round_trip(tiny_cnn):
    clf, x, y = tiny_cnn
    result = ft.evaluate(clf, x[:24], y[:24], ft.Linf(0.3))
    again = ft.Result.from_json(result.to_json())
    assert again.gallery == result.gallery and len(again.gallery) == MAX_ENTRIES
    for before, after in zip(result.gallery, again.gallery, strict=True):
        assert all(torch.equal(a, b) for a, b in zip(before.images(), after.images(), strict=True))


def test_it_keeps_at_most_limit_points_and_shows_as_many_classes_as_it_can():
    gallery = Gallery((0.0, 1.0), limit=4)
    batch = torch.rand(6, 1, 4, 4)
    gallery.offer(torch.arange(6), torch.tensor([0, 0, 0, 0, 0, 1]), batch)
    assert sorted(gallery.points) == [0, 1, 2, 5]  # class 1 replaced the latest-kept class-0 sample
    gallery.offer(torch.tensor([9, 7, 8]), torch.tensor([2, 1, 3]), torch.rand(3, 1, 4, 4))
    assert sorted(gallery.points) == [0, 5, 8, 9] and len({lab for lab, _ in gallery.points.values()}) == 4
    gallery.offer(torch.tensor([10]), torch.tensor([4]), torch.rand(1, 1, 4, 4))  # all classes distinct
    assert sorted(gallery.points) == [0, 5, 8, 9]
    assert torch.equal(gallery.points[0][1], batch[0]) and torch.equal(gallery.points[5][1], batch[5])


def test_kept_points_are_copies_that_do_not_hold_the_batch():
    gallery = Gallery((0.0, 1.0))
    batch = torch.rand(100, 3, 16, 16)
    gallery.offer(torch.arange(100), torch.arange(100) % 10, batch)
    assert len(gallery.points) == MAX_ENTRIES
    for _, point in gallery.points.values():
        assert point.untyped_storage().nbytes() == point.numel() * 4


@pytest.mark.parametrize(
    ("shape", "kept"),
    [
        ((5, 1, 28, 28), 8),
        ((5, 3, 32, 32), 8),
        ((5, 3, 64, 64), 2),
        ((5, 3, 65, 64), 0),
        ((5, 2, 8, 8), 0),
        ((5, 30), 0),
    ],
)
def test_only_batches_of_small_images_get_a_gallery_of_bounded_size(shape, kept):
    assert Gallery.for_inputs(torch.zeros(shape), (0.0, 1.0)).limit == kept


def test_tables_get_no_gallery_and_unbroken_images_an_empty_one(tiny_cnn):
    torch.manual_seed(0)
    table = ft.Classifier(ft.zoo.create("mlp", (30,), 2), num_classes=2)
    x = torch.rand(8, 30)
    assert ft.evaluate(table, x, table.predict(x), ft.Linf(0.3)).gallery is None
    clf, x, y = tiny_cnn
    result = ft.evaluate(clf, x[:8], y[:8], ft.Linf(0.0))
    assert result.gallery == [] and not any(s.broken_by for s in result.samples)
