"""ft.BlackBox: any callable as a model, every query counted; scikit-learn and ONNX loaders."""

from __future__ import annotations

import importlib.util
import threading
import warnings

import numpy as np
import pytest
import torch

import fortify as ft
from fortify.blackbox import classifier_from_onnx, from_onnx, from_sklearn


def _box(clf: ft.Classifier, output: str = "scores", batch_size: int = 512) -> ft.BlackBox:
    if output == "scores":
        return ft.BlackBox(lambda x: clf.logits(x), clf.num_classes, output="scores", batch_size=batch_size)
    return ft.BlackBox(lambda x: clf.predict(x), clf.num_classes, output="labels", batch_size=batch_size)


def test_scores_and_labels_match_the_wrapped_model_and_every_row_is_counted(tiny_cnn):
    clf, x, _ = tiny_cnn
    box = _box(clf, batch_size=7)
    assert torch.allclose(box.scores(x[:20]), clf.logits(x[:20]))
    assert torch.equal(box.predict(x[:20]), clf.predict(x[:20]))
    assert box.queries == 40 and box.calls == 6  # two calls of 20 rows in chunks of 7
    assert box.reset_queries() == (40, 6) and box.queries == 0
    labels_only = _box(clf, "labels")
    assert torch.equal(labels_only.predict(x[:5]), clf.predict(x[:5]))
    with pytest.raises(ft.FortifyError, match="labels only"):
        labels_only.scores(x[:5])


def test_counter_is_exact_under_concurrent_threads(tiny_cnn):
    clf, x, _ = tiny_cnn
    box = _box(clf, batch_size=2)

    def work() -> None:
        for _ in range(25):
            box.predict(x[:3], check=False)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert box.queries == 8 * 25 * 3 and box.calls == 8 * 25 * 2


def test_wrong_outputs_and_inputs_are_one_line_errors(tiny_cnn):
    clf, x, _ = tiny_cnn
    with pytest.raises(ft.FortifyError, match="expected \\(4, 4\\) float scores"):
        ft.BlackBox(lambda z: torch.zeros(len(z), 3), 4)(x[:4])
    with pytest.raises(ft.FortifyError, match="labels outside"):
        ft.BlackBox(lambda z: torch.full((len(z),), 9), 4, output="labels")(x[:4])
    with pytest.raises(ft.FortifyError, match="integer labels"):
        ft.BlackBox(lambda z: torch.rand(len(z)), 4, output="labels")(x[:4])
    with pytest.raises(ft.FortifyError, match="NaN"):
        ft.BlackBox(lambda z: torch.full((len(z), 4), float("nan")), 4)(x[:4])
    box = _box(clf)
    with pytest.raises(ft.FortifyError, match="bounds"):
        box(x[:4] + 2)
    with pytest.raises(ft.FortifyError, match="floating point"):
        box((x[:4] * 255).long())
    with pytest.raises(TypeError):
        ft.BlackBox("not callable", 4)  # type: ignore[arg-type]
    with pytest.raises(ft.FortifyError, match="output"):
        ft.BlackBox(lambda z: z, 4, output="probabilities")  # type: ignore[arg-type]
    with pytest.raises(ft.FortifyError, match="num_classes"):
        ft.BlackBox(lambda z: z, 1)


def test_numpy_outputs_are_accepted(tiny_cnn):
    clf, x, _ = tiny_cnn
    box = ft.BlackBox(lambda z: clf.logits(z).numpy(), clf.num_classes)
    assert torch.equal(box.predict(x[:6]), clf.predict(x[:6]))


def test_gradient_attacks_refuse_a_black_box_and_score_attacks_a_labels_only_one(tiny_cnn):
    clf, x, y = tiny_cnn
    with pytest.raises(TypeError, match="needs gradients"):
        ft.attacks.PGD()(_box(clf), x[:4], y[:4], ft.Linf(0.1))
    with pytest.raises(TypeError, match="needs scores"):
        ft.attacks.Square()(_box(clf, "labels"), x[:4], y[:4], ft.Linf(0.1))
    with pytest.raises(TypeError, match="Classifier or BlackBox"):
        ft.attacks.Square()(lambda z: z, x[:4], y[:4], ft.Linf(0.1))  # type: ignore[arg-type]


def test_sklearn_estimator_as_black_box(tiny_mlp):
    from sklearn.linear_model import LogisticRegression

    _, x, y = tiny_mlp
    est = LogisticRegression(max_iter=500).fit(x.numpy(), y.numpy())
    box = from_sklearn(est)
    expected = torch.from_numpy(est.predict_proba(x.numpy().astype(np.float64)))
    assert torch.allclose(box.scores(x), expected)
    assert torch.equal(
        from_sklearn(est, output="labels").predict(x), torch.from_numpy(est.predict(x.numpy()))
    )
    with pytest.raises(ft.FortifyError, match="classes_"):
        from_sklearn(LogisticRegression().fit(x.numpy(), y.numpy() + 3))
    with pytest.raises(ft.FortifyError, match="not a fitted classifier"):
        from_sklearn(LogisticRegression())


def _export(module: torch.nn.Module, example: torch.Tensor, path: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            path,
            dynamo=False,
            input_names=["x"],
            output_names=["logits"],
            dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}},
        )


def test_onnx_file_as_black_box_gives_the_same_predictions(tiny_cnn, tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    clf, x, _ = tiny_cnn
    path = str(tmp_path / "tiny.onnx")
    _export(clf.module, x[:2], path)
    box = from_onnx(path)
    assert box.num_classes == clf.num_classes
    assert torch.allclose(box.scores(x[:50]), clf.logits(x[:50]), atol=1e-4)
    assert torch.equal(box.predict(x[:50]), clf.predict(x[:50]))
    with pytest.raises(ft.FortifyError, match="no ONNX file"):
        from_onnx(str(tmp_path / "missing.onnx"))
    (tmp_path / "junk.onnx").write_bytes(b"not a graph")
    with pytest.raises(ft.FortifyError, match="cannot load"):
        from_onnx(str(tmp_path / "junk.onnx"))


def test_onnx_file_converts_to_a_white_box_classifier(tiny_cnn, tmp_path):
    pytest.importorskip("onnx")
    if importlib.util.find_spec("onnx2torch") is None:  # it imports torchvision, which fortify shims
        pytest.skip("onnx2torch is not installed (pip install 'fortify[onnx]')")
    clf, x, y = tiny_cnn
    path = str(tmp_path / "tiny.onnx")
    _export(clf.module, x[:2], path)
    white = classifier_from_onnx(path)
    assert isinstance(white, ft.Classifier) and white.num_classes == clf.num_classes
    assert torch.allclose(white.logits(x[:50]), clf.logits(x[:50]), atol=1e-4)
    x_adv = ft.attacks.PGD(steps=10)(white, x[:32], y[:32], ft.Linf(0.3))  # gradients flow through it
    assert float((clf.predict(x_adv) == y[:32]).float().mean()) <= 0.1
    (tmp_path / "junk.onnx").write_bytes(b"not a graph")
    with pytest.raises(ft.FortifyError, match="cannot read"):
        classifier_from_onnx(str(tmp_path / "junk.onnx"))
