"""MNIST with the default BayesianCNNClassifier against a plain flax + optax CNN, in one process.

Every row trains the same LeNet-like network (5x5 convolutions of 32 and 64
channels, 'same' padding, each with ReLU and 2x2 max pooling, a dense layer of
128, batch 200, Adam at 1e-3) for the same number of epochs, then predicts the
MNIST test digits and the Fashion-MNIST test images. Columns:

- s/epoch and x floor: fit time per epoch (programs compiled by a warm-up fit
  first), and as a ratio to the plain flax + optax loop (a jitted step per
  minibatch, the floor);
- acc, NLL, ECE (15 bins on the top probability);
- F>=0.6: share of Fashion-MNIST images given a top probability >= 0.6;
- AUROC: MNIST-test vs Fashion-MNIST-test separated by predictive entropy.

The map row is the default ``MAP()`` (Adam's step size falling to 0 along a
cosine over the epochs); the laplace row is the default ``Laplace()`` (around
that MAP: last layer, K-FAC, prior precision from the marginal likelihood,
temperature chosen on a held-back split, probit predictive); psgld keeps
``--n-draws`` draws per chain at ``--temperature`` and vi uses ``--kl-weight``,
both "auto" by default (the package's default: chosen on a held-back tenth
of the training rows, never on the test rows); vi predicts with
``--vi-draws`` draws. ``map-constant`` is the MAP at a constant step size. A
row name that is not a strategy is reported, not run.

Run: python benchmarks/mnist_cnn.py [--data-dir ../shared/data] [--epochs 5]
"""

import argparse
import time
import warnings

import flax.linen as nn
import jax
import numpy as np
import optax
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, log_loss

from _results import format_table, update
from skbnn import BayesianCNNClassifier
from skbnn.datasets import load_mnist
from skbnn.inference import MAP, PSGLD, STRATEGIES, VI, Laplace
from skbnn.metrics import expected_calibration_error, ood_auroc

BATCH = 200


def entropy(p):
    return -np.sum(np.where(p > 0, p * np.log(np.clip(p, 1e-300, None)), 0.0), axis=1)


class FloorCNN(nn.Module):
    @nn.compact
    def __call__(self, x):
        for c in (32, 64):
            x = nn.relu(nn.Conv(c, (5, 5), padding="SAME")(x))
            x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = nn.relu(nn.Dense(128)(x.reshape(x.shape[0], -1)))
        return nn.Dense(10)(x)


def floor_row(args, data):
    X, y = data["train"]
    X = X[..., None]
    net, opt = FloorCNN(), optax.adam(1e-3)

    @jax.jit
    def step(params, state, xb, yb):
        def loss(p):
            return optax.softmax_cross_entropy_with_integer_labels(net.apply(p, xb), yb).mean()
        updates, state = opt.update(jax.grad(loss)(params), state, params)
        return optax.apply_updates(params, updates), state

    predict = jax.jit(lambda p, xb: jax.nn.softmax(net.apply(p, xb)))

    def fit(epochs):
        params = net.init(jax.random.key(args.seed), X[:1])
        state = opt.init(params)
        rng = np.random.RandomState(args.seed)
        n = len(X) // BATCH * BATCH
        for _ in range(epochs):
            order = rng.permutation(len(X))[:n].reshape(-1, BATCH)
            for rows in order:
                params, state = step(params, state, X[rows], y[rows])
        return jax.block_until_ready(params)

    fit(1)  # compile
    t0 = time.perf_counter()
    params = fit(args.epochs)
    seconds = time.perf_counter() - t0

    def proba(Xe):
        Xe = Xe[..., None]
        return np.concatenate([np.asarray(predict(params, Xe[i:i + 1000]))
                               for i in range(0, len(Xe), 1000)]).astype(np.float64)
    return proba, seconds / args.epochs


def skbnn_row(args, data, inference):
    X, y = data["train"]

    def make(epochs):
        return BayesianCNNClassifier(inference=inference, batch_size=BATCH, max_iter=epochs,
                                     tol=0.0, n_iter_no_change=epochs + 1,
                                     random_state=args.seed)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        make(1).fit(X, y).predict_proba(data["test"][0][:10])  # compile
        clf = make(args.epochs)
        t0 = time.perf_counter()
        clf.fit(X, y)
        seconds = time.perf_counter() - t0
    return clf.predict_proba, seconds / clf.n_iter_


def evaluate(proba, data):
    X_test, y_test = data["test"]
    p, p_fashion = proba(X_test), proba(data["fashion"][0])
    return {
        "acc": accuracy_score(y_test, p.argmax(1)),
        "NLL": log_loss(y_test, p, labels=np.arange(10)),
        "ECE": expected_calibration_error(y_test, p, n_bins=15),
        "F>=0.6": float(np.mean(p_fashion.max(1) >= 0.6)),
        "AUROC": ood_auroc(entropy(p), entropy(p_fashion)),
    }


def auto_or_float(text):
    return text if text == "auto" else float(text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--n-train", type=int, default=None, help="use the first N training rows")
    parser.add_argument("--n-test", type=int, default=None, help="use the first N test rows")
    parser.add_argument("--n-draws", type=int, default=10, help="pSGLD draws kept")
    parser.add_argument("--temperature", type=auto_or_float, default="auto",
                        help="pSGLD's temperature: a float or 'auto' (the default's)")
    parser.add_argument("--kl-weight", type=auto_or_float, default="auto",
                        help="vi's kl_weight: a float or 'auto' (the default's)")
    parser.add_argument("--vi-draws", type=int, default=30, help="vi's predictive draws")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-chains", type=int, default=1, help="pSGLD chains")
    parser.add_argument("--table", default="",
                        help="store the table under this name in benchmarks/results/mnist_cnn.json")
    parser.add_argument("--rows", default="floor,map,laplace,psgld,vi",
                        help="comma-separated subset of floor,map,map-constant,laplace,psgld,vi")
    args = parser.parse_args(argv)

    data = {
        "train": load_mnist(args.data_dir, split="train", flatten=False),
        "test": load_mnist(args.data_dir, split="test", flatten=False),
        "fashion": load_mnist(args.data_dir, kind="fashion-mnist", split="test", flatten=False),
    }
    if args.n_train:
        data["train"] = tuple(a[: args.n_train] for a in data["train"])
    if args.n_test:
        data["test"] = tuple(a[: args.n_test] for a in data["test"])
        data["fashion"] = tuple(a[: args.n_test] for a in data["fashion"])

    strategies = {
        "map": MAP(),  # Adam's step size falling to 0 along a cosine over the epochs
        "map-constant": MAP(learning_rate_schedule="constant"),
        "psgld": PSGLD(n_chains=args.n_chains, n_draws=args.n_draws,
                       temperature=args.temperature),
        "vi": VI(kl_weight=args.kl_weight, n_predictive_draws=args.vi_draws),
    }
    rows, missing = [], []
    for key in args.rows.split(","):
        if key == "floor":
            name, (proba, per_epoch) = "flax+optax floor", floor_row(args, data)
        elif key in strategies or key in STRATEGIES:
            name = f"skbnn {key}"
            proba, per_epoch = skbnn_row(args, data, strategies.get(key, key))
        else:
            missing.append(key)
            continue
        row = {"method": name, "s/epoch": per_epoch, **evaluate(proba, data)}
        rows.append(row)
        print(f"done: {name} ({per_epoch:.1f} s/epoch)", flush=True)

    floor = next((r["s/epoch"] for r in rows if r["method"].startswith("flax")), None)
    columns = ["method", "s/epoch", "x floor", "acc", "NLL", "ECE", "F>=0.6", "AUROC"]
    title = (f"MNIST CNN (32, 64) 5x5 + 128, batch {BATCH}, {args.epochs} epoch(s), "
             f"{len(data['train'][0])} training and {len(data['test'][0])} test rows, "
             f"seed {args.seed}; psgld T={args.temperature}, {args.n_chains} chain(s), "
             f"{args.n_draws} draws; vi kl_weight={args.kl_weight}, "
             f"{args.vi_draws} predictive draws")
    cells = []
    for r in rows:
        r["x floor"] = r["s/epoch"] / floor if floor else float("nan")
        cells.append([r["method"]] + [
            (f"{r[c]:.2f}" if c in ("s/epoch", "x floor") else f"{r[c]:.4f}")
            for c in columns[1:]])
    notes = []
    if missing:
        notes.append(f"not available in this version (not in skbnn.inference.STRATEGIES): "
                     f"{', '.join(missing)}")
    table = {"title": title, "columns": columns, "rows": cells, "notes": notes}
    print()
    print(format_table(table))
    if args.table:
        path = update("mnist_cnn", tables={args.table: table},
                      settings={args.table: vars(args)}, raw={args.table: rows})
        print(f"results written to {path} (table {args.table!r})")


if __name__ == "__main__":
    main()
