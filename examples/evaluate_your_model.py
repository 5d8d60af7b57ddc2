"""Evaluate your own model on your own data: how robust it really is, per sample, worst case.

    python examples/evaluate_your_model.py                 # ~1 minute on 2 CPU cores
    python examples/evaluate_your_model.py --n 50 --suite quick --out /tmp/eval

Wraps your ``nn.Module`` (``your_model.py``) in ``ft.Classifier``, attacks it with a suite (each sample
counts as robust only if no attack breaks it), prints what each attack did and whether the evaluation
itself looks trustworthy, and writes the Result JSON (read by ``fortify report`` and ``fortify gate``)
and an HTML report.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from your_model import small_cnn, train_your_way, your_data

import fortify as ft


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="test images to attack")
    parser.add_argument("--eps", type=float, default=0.1, help="Linf radius")
    parser.add_argument("--suite", default="standard", help="quick, standard or strong")
    parser.add_argument("--out", type=Path, default=Path("runs/examples/evaluate"))
    args = parser.parse_args()

    (x_train, y_train), (x_test, y_test) = your_data()
    module = small_cnn()
    train_your_way(module, x_train, y_train)

    clf = ft.Classifier(module, num_classes=10, bounds=(0.0, 1.0))  # normalisation would go here too
    result = ft.evaluate(clf, x_test[: args.n], y_test[: args.n], ft.Linf(args.eps), suite=args.suite)

    print(f"clean {result.clean_accuracy:.1%}, robust {result.robust_accuracy:.1%} at Linf {args.eps}")
    for record in result.per_attack:
        print(f"  {record.name}: broke {record.n_succeeded} of the {record.n_attacked} samples it attacked")
    failed = [d for d in result.diagnostics if not d.passed]
    print("evaluation looks trustworthy" if not failed else f"UNRELIABLE: {[d.name for d in failed]}")

    result.save(str(args.out / "eval.json"))
    ft.report.write_html(result, str(args.out / "report.html"))
    print(f"wrote {args.out / 'eval.json'} and {args.out / 'report.html'}")


if __name__ == "__main__":
    main()
