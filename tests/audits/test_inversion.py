"""Model inversion (Fredrikson et al. 2015): representatives inside the bounds, of the right shape, that
look like their own class on a model that learned the classes, and not on one that learned nothing;
the Result section round-trips and the report draws its images, refusing tampered ones."""

from __future__ import annotations

import json

import pytest
import torch

import fortify as ft
from fortify.audits import privacy
from fortify.result.gallery import encode_pixels
from tests.conftest import fresh_cnn_tiny


@pytest.fixture(scope="module")
def reference():
    return ft.data.load("synthetic", "train")


@pytest.fixture(scope="module")
def inverted(tiny_cnn, reference):
    clf, _, _ = tiny_cnn
    return privacy.model_inversion(clf, reference=reference, steps=100)


def test_representatives_have_the_input_shape_and_stay_in_bounds(inverted):
    assert inverted.classes == [0, 1, 2, 3] and inverted.images.shape == (4, 1, 8, 8)
    assert float(inverted.images.min()) >= 0.0 and float(inverted.images.max()) <= 1.0
    assert all(c > 0.9 for c in inverted.confidence)  # the model is sure of each representative
    assert inverted.cosine is not None and inverted.cosine.shape == (4, 4) and inverted.n_reference == 512


def test_each_representative_is_most_like_its_own_class_mean(inverted):
    cosine, l2 = inverted.cosine, inverted.l2
    assert cosine is not None and l2 is not None
    for k, label in enumerate(inverted.classes):
        others = [j for j in range(4) if j != label]
        assert cosine[k, label] > cosine[k, others].max(), (label, cosine[k])
        assert l2[k, label] < l2[k, others].min(), (label, l2[k])
    assert inverted.identified == 1.0 and inverted.nearest_class == [0, 1, 2, 3]
    assert inverted.mean_true_cosine > inverted.mean_other_cosine + 0.3


def test_an_untrained_model_gives_nothing_away(inverted, reference):
    untrained = privacy.model_inversion(fresh_cnn_tiny(seed=3), reference=reference, steps=100)
    assert untrained.mean_true_cosine < inverted.mean_true_cosine - 0.2


def test_chosen_classes_and_priors(tiny_cnn, reference):
    clf, _, _ = tiny_cnn
    smooth = privacy.model_inversion(clf, [2], reference=reference, steps=50, tv_weight=0.5, start="mid")
    rough = privacy.model_inversion(clf, [2], reference=reference, steps=50, start="mid")
    assert smooth.classes == [2] and smooth.images.shape == (1, 1, 8, 8)

    def variation(x: torch.Tensor) -> float:
        return float((x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., 1:] - x[..., :-1]).abs().mean())

    assert variation(smooth.images) < variation(rough.images)
    blind = privacy.model_inversion(clf, [1], shape=(1, 8, 8), steps=20)
    assert blind.cosine is None and blind.identified is None and "cosine" not in blind.to_dict()["classes"][0]


def test_the_weights_are_untouched_and_the_mode_restored(tiny_cnn):
    clf, _, _ = tiny_cnn
    before = [p.detach().clone() for p in clf.parameters()]
    privacy.model_inversion(clf, shape=(1, 8, 8), steps=10)
    assert all(torch.equal(a, b) for a, b in zip(before, clf.parameters(), strict=True))
    assert not clf.module.training and all(p.requires_grad for p in clf.parameters())


@pytest.mark.parametrize(
    "options, message",
    [
        ({"classes": [4]}, r"classes must be integers in \[0, 3\]"),
        ({"classes": []}, "at least one class"),
        ({"steps": 0}, "steps"),
        ({"lr": 0.0}, "lr must be"),
        ({"tv_weight": -1.0}, "tv_weight"),
        ({"start": "noise"}, "start must be one of"),
        ({}, "needs the input shape"),
        ({"shape": (1, 4, 4), "reference": "R"}, "differs from the reference"),
        ({"reference": "R3"}, "no sample of class 3"),
    ],
)
def test_bad_input_is_a_one_line_error(tiny_cnn, reference, options, message):
    clf, _, _ = tiny_cnn
    x, y = reference
    if options.get("reference") == "R":
        options["reference"] = (x, y)
    elif options.get("reference") == "R3":
        options["reference"] = (x[y != 3], y[y != 3])
    with pytest.raises(ft.FortifyError, match=message) as caught:
        privacy.model_inversion(clf, **options)
    assert "\n" not in str(caught.value)


def _result(inverted) -> ft.Result:
    section = inverted.to_dict(["zero", "one", "two", "<b>three</b>"])
    return ft.Result(kind="audit", sections={"inversion": section})


def test_the_section_round_trips_through_the_result(inverted):
    result = ft.Result.from_json(_result(inverted).to_json())
    section = result.sections["inversion"]
    assert section["identified"] == 1.0 and section["shape"] == [1, 8, 8] and len(section["classes"]) == 4
    assert section["classes"][3]["name"] == "<b>three</b>" and section["classes"][0]["nearest_class"] == 0
    bad = json.loads(_result(inverted).to_json())
    bad["sections"]["inversion"]["classes"][0]["unknown"] = 1
    with pytest.raises(ft.FortifyError, match="unknown"):
        ft.Result.from_json(json.dumps(bad))


def test_the_report_shows_each_representative_beside_its_class_mean(inverted):
    page = ft.report.render_html(_result(inverted))
    assert '<section id="inversion">' in page and page.count('alt="inverted"') == 4
    assert page.count('alt="class mean"') == 4 and "100.0% of the representatives" in page
    assert "<b>three</b>" not in page and "&lt;b&gt;three&lt;/b&gt;" in page
    assert "iVBORw0KGgo" in page  # PNG data URIs
    assert '<section id="more">' not in page  # not dumped as JSON


def test_a_tampered_image_is_left_out_not_drawn(inverted):
    result = _result(inverted)
    rows = result.sections["inversion"]["classes"]
    rows[0]["image"] = encode_pixels(torch.full((1, 8, 8), 7.0))  # outside the recorded bounds
    rows[1]["image"] = "not base64!"
    page = ft.report.render_html(result)
    assert page.count('alt="inverted"') == 2 and "2 stored image(s) failed their checks" in page
