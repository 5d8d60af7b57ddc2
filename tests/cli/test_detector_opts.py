"""`fortify evaluate --detector`: a detector calibrated on unscored training images, judged and attacked.

Feature squeezing with 2-bit depth reduction on the tiny CNN (as in tests/evaluation/test_detection.py)
flags naive attack points, so whether an evaluation judges with it shows in which points count as breaks.
"""

from __future__ import annotations

import pytest

import fortify as ft
from fortify.cli.detector_opts import detector_spec, with_detector
from fortify.cli.main import main
from fortify.defenses import BitDepth, defend
from fortify.detect import FeatureSqueezing
from fortify.result_gallery import decode_pixels


@pytest.fixture(scope="module")
def model_file(tiny_cnn, tmp_path_factory):
    clf, _, _ = tiny_cnn
    return ft.zoo.save(clf, tmp_path_factory.mktemp("m") / "tiny.safetensors", dataset="synthetic")


def evaluate_args(model_file, *extra: str) -> list[str]:
    base = ["evaluate", "--model", str(model_file), "--data", "synthetic", "--n", "16", "--eps", "0.3"]
    return [*base, "--suite", "quick", "--threads", "1", *extra]


def test_evaluate_with_a_detector_records_it_and_judges_breaks_with_it(model_file, tmp_path, capsys):
    out, report = tmp_path / "eval.json", tmp_path / "report.html"
    detector_opts = ["--detector", "squeeze", "--squeeze-bits", "2", "--squeeze-median", "0"]
    calibration = ["--detector-fpr", "0.1", "--calibration-n", "128"]
    files = ["--out", str(out), "--report", str(report)]
    assert main(evaluate_args(model_file, *detector_opts, *calibration, *files)) == 0
    result = ft.Result.load(str(out))

    clf = ft.zoo.load(model_file)
    x_cal, _ = ft.data.load("synthetic", "train", n=128)
    expected = FeatureSqueezing(clf, [BitDepth(2)]).calibrate(x_cal, fpr=0.1)
    defended = defend(clf, detector=expected)
    x, _ = ft.data.load("synthetic", "test", n=16)
    record = result.detector
    assert record["fpr"] == 0.1 and record["threshold"] == pytest.approx(expected.threshold, rel=1e-6)
    assert record["squeezers"] == [{"name": "BitDepth", "bounds": [0.0, 1.0], "bits": 2}]
    assert record["calibration"] == {"dataset": "synthetic", "split": "train", "start": 0, "n": 128}
    assert record["clean_flag_rate"] == pytest.approx(float(defended.flagged(x).float().mean()))

    assert record["in_objective"] and "evade-detector" in [r.name for r in result.per_attack]
    assert result.robust_accuracy < result.clean_accuracy and result.gallery
    for entry in result.gallery:  # every shown break is misclassified and slips past the detector
        point = decode_pixels(entry.adversarial, entry.shape)[None]
        assert int(defended.predict(point)) != entry.label
        assert not bool(defended.flagged(point))

    printed = capsys.readouterr().out
    assert f"threshold {expected.threshold:.4g} calibrated at FPR 10.0%" in printed
    assert "train images 0-127 of synthetic" in printed
    page = report.read_text()
    assert '<section id="detector">' in page and "FeatureSqueezing (BitDepth bits=2)" in page
    assert "misclassified and not flagged" in page


def test_calibration_skips_the_evaluated_images_when_they_come_from_the_train_split(tiny_cnn):
    clf, _, _ = tiny_cnn
    spec = detector_spec("squeeze", 0.1, 40, 2, 0, "synthetic")
    defended, calibration = with_detector(clf, spec, "synthetic", "train", n_scored=16)
    assert (calibration.split, calibration.start, calibration.n) == ("train", 16, 40)
    x_cal, _ = ft.data.load("synthetic", "train", n=56)
    expected = FeatureSqueezing(clf, [BitDepth(2)]).calibrate(x_cal[16:], fpr=0.1).threshold
    assert defended.detector.threshold == expected
    _, test_calibration = with_detector(clf, spec, "synthetic", "test", n_scored=16)
    assert test_calibration.start == 0


def test_the_squeeze_defaults_follow_the_data():
    images = detector_spec("squeeze", None, None, None, None, "synthetic")
    assert (images.fpr, images.calibration_n, images.squeeze_bits, images.squeeze_median) == (
        0.05,
        1000,
        5,
        2,
    )
    assert detector_spec("squeeze", None, None, None, None, "breast-cancer").squeeze_median == 0
    assert detector_spec(None, None, None, None, None, "synthetic") is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--detector", "lid"], "unknown detector 'lid'"),
        (["--detector", "squeeze", "--detector-fpr", "0"], "--detector-fpr must be strictly between"),
        (["--detector", "squeeze", "--detector-fpr", "1.5"], "--detector-fpr must be strictly between"),
        (["--detector", "squeeze", "--squeeze-bits", "17"], "--squeeze-bits must be 1-16"),
        (["--detector", "squeeze", "--squeeze-bits", "-1"], "--squeeze-bits must be 1-16"),
        (["--detector", "squeeze", "--squeeze-median", "9"], "--squeeze-median must be 2-8"),
        (["--detector", "squeeze", "--squeeze-bits", "0", "--squeeze-median", "0"], "needs a squeezer"),
        (["--detector", "squeeze", "--calibration-n", "0"], "--calibration-n must be >= 1"),
        (["--detector", "squeeze", "--detector-fpr", "0.01", "--calibration-n", "50"], "at least 100"),
        (["--squeeze-bits", "3"], "--squeeze-bits needs --detector"),
    ],
)
def test_bad_detector_options_exit_2_with_one_line(model_file, capsys, extra, message):
    assert main(evaluate_args(model_file, *extra)) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) <= 3  # one message, possibly soft-wrapped by the terminal width


def test_a_median_squeezer_on_a_table_is_refused():
    with pytest.raises(ft.FortifyError, match="--squeeze-median needs images"):
        detector_spec("squeeze", None, None, None, 2, "breast-cancer")


def test_sweep_takes_the_same_detector_options(model_file, tmp_path, capsys):
    out = tmp_path / "sweep.json"
    args = ["sweep", "--model", str(model_file), "--data", "synthetic", "--n", "8", "--eps", "0.1,0.3"]
    detector_opts = ["--detector", "squeeze", "--squeeze-bits", "2", "--squeeze-median", "0"]
    extra = ["--calibration-n", "64", "--suite", "quick", "--no-refine", "--threads", "1"]
    assert main([*args, *detector_opts, *extra, "--out", str(out)]) == 0
    record = ft.Result.load(str(out)).detector
    assert record["calibration"]["n"] == 64 and record["fpr"] == 0.05
    assert "detector FeatureSqueezing: threshold" in capsys.readouterr().out
    assert main([*args, "--detector", "squeeze", "--detector-fpr", "2"]) == 2


def test_evaluate_help_documents_the_detector_options(capsys):
    assert main(["evaluate", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.replace("│", " ").split())  # rich's table borders
    for option in ("--detector", "--detector-fpr", "--calibration-n", "--squeeze-bits", "--squeeze-median"):
        assert option in text
    assert "feature squeezing" in text and "train split" in text and "does not score" in text
    assert "(default 0.05)" in text and "(default 2 for images, 0 for tables)" in text
