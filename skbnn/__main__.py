"""``python -m skbnn``: every inference strategy on scikit-learn's digits, side by side.

Fits ``BayesianMLPClassifier`` with each available strategy at its default
settings on 75% of the 8x8 digits, prints accuracy, NLL, ECE and fit time on
the other 25%, then shows the test digits the default (pSGLD) model is least
sure about.
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split

from . import BayesianCNNClassifier, BayesianMLPClassifier
from .inference import NUTS, STRATEGIES
from .metrics import expected_calibration_error

#: Every strategy runs at its defaults, except NUTS: full-batch and exact, its
#: defaults (4 chains x 1,000 transitions of up to 1,023 gradients) would take
#: hours on this network; a 16-unit network and short chains keep it to seconds.
DEMO_SETTINGS = {
    "nuts": dict(inference=NUTS(n_chains=2, n_warmup=100, n_draws=50, max_tree_depth=5),
                 hidden_layer_sizes=(16,)),
}

_SHADES = " .:-=+*#%@"


def _ascii_digit(image):
    rows = []
    for row in image.reshape(8, 8):
        rows.append("".join(_SHADES[min(int(v * (len(_SHADES) - 1)), len(_SHADES) - 1)] * 2
                            for v in row))
    return rows


def _estimators(random_state):
    common = dict(hidden_layer_sizes=(64,), random_state=random_state)
    for name in STRATEGIES:
        settings = DEMO_SETTINGS.get(name, dict(inference=name))
        yield name, BayesianMLPClassifier(**{**common, **settings})
    # the same digits as 8x8 images, through a small convolutional network (its
    # default strategy, pSGLD; 30 epochs)
    yield "cnn psgld", BayesianCNNClassifier(
        conv_channels=(8, 16), kernel_size=3, hidden_layer_sizes=(32,), max_iter=30,
        random_state=random_state)


def _size_note(est):
    """A note on rows whose network is not the 64-unit one of the table's title."""
    if isinstance(est, BayesianCNNClassifier):
        return "  (convolutions with 8 and 16 channels, 32 dense units, 30 epochs)"
    sizes = tuple(np.atleast_1d(est.hidden_layer_sizes))
    if sizes != (64,):
        return (f"  ({', '.join(map(str, sizes))} hidden units; 2 chains x 50 draws after "
                "100 warmup)")
    return ""


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m skbnn", description=__doc__.splitlines()[0])
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--n-show", type=int, default=4, help="least-sure digits to show")
    args = parser.parse_args(argv)

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X / 16.0, y, test_size=0.25, random_state=args.random_state, stratify=y
    )
    print(f"skbnn on scikit-learn's digits: {len(X_train)} training and {len(X_test)} test "
          "images, an MLP with 64 hidden units, every strategy at its defaults unless "
          "noted\n")
    print(f"{'inference':<10} {'accuracy':>9} {'NLL':>8} {'ECE':>8} {'fit s':>8} {'T':>7}")
    fitted = {}
    for name, est in _estimators(args.random_state):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X_train, y_train)
        seconds = time.perf_counter() - t0
        proba = est.predict_proba(X_test)
        d = est.diagnostics_
        temperature = d.get("temperature", d.get("kl_weight"))
        print(f"{name:<10} {accuracy_score(y_test, proba.argmax(1)):>9.4f} "
              f"{log_loss(y_test, proba, labels=est.classes_):>8.4f} "
              f"{expected_calibration_error(y_test, proba):>8.4f} {seconds:>8.2f} "
              f"{'' if temperature is None else format(temperature, 'g'):>7}"
              f"{_size_note(est)}", flush=True)
        fitted[name] = est
    print("(fit s includes compiling; a refit of the same shapes compiles nothing. T: the "
          "posterior temperature chosen on held-back rows, 1 being the Bayes posterior)\n")

    est = fitted.get("psgld", next(iter(fitted.values())))
    u = est.predict_uncertainty(X_test)
    proba = est.predict_proba(X_test)
    order = np.argsort(-u.total)[: args.n_show]
    print(f"The {args.n_show} test digits the {est.inference_.name} model is least sure about "
          "(entropy in nats: total = aleatoric + epistemic):")
    blocks = []
    for i in order:
        top = np.argsort(-proba[i])[:2]
        caption = [f"true {y_test[i]}, predicted {top[0]} ({proba[i, top[0]]:.2f})",
                   f"runner-up {top[1]} ({proba[i, top[1]]:.2f})",
                   f"entropy {u.total[i]:.2f} = {u.aleatoric[i]:.2f} + {u.epistemic[i]:.2f}"]
        blocks.append((_ascii_digit(X_test[i]), caption))
    for art, caption in blocks:
        print()
        for k, line in enumerate(art):
            print(f"  {line}  {caption[k] if k < len(caption) else ''}")


if __name__ == "__main__":
    main()
