"""Covariance structures of Gaussian posteriors: one class each, one interface.

A structure says how a Gaussian over the *covered* parameters (a sub-tree of
the parameters, e.g. the last layer) is stored and used. Each is one class,
registered by name in ``STRUCTURES``, with the same methods:

- built from curvature (the Laplace approximation's generalised Gauss-Newton
  matrix, GGN): ``zeros(covered)`` and ``accumulate(model, params, subset,
  batch)`` sum the curvature over chunks of rows (``None`` for a structure
  that only needs GGN-vector products, :class:`LowRank`); ``eigen(curvature,
  covered, n_eff)`` turns it into blocks of eigenvalues for the marginal
  likelihood; ``factors(covered, eig, delta)`` into the covariance for prior
  precision ``delta`` (a dict by block);
- used: ``sample(rng_key, mean, factors, n)``, ``log_det(mean, factors)``,
  ``variance(mean, factors)`` (marginal variances), ``output_cov(mean,
  factors, jac)`` (the covariance ``J Sigma J^T`` of linearised outputs) and,
  for dense layers, ``dense_layer_cov(factors, name, a, g)``;
- ``check(covered)`` refuses covered weights the structure cannot hold, and
  ``values_per_row`` sizes the chunks of rows the curvature is summed over.

``factors`` are plain dicts of arrays, so a fitted posterior saves as arrays.
A new structure is a new class here plus one entry in ``STRUCTURES``.
The likelihood's share of the curvature (its Hessian with respect to the
network outputs) comes from the likelihood itself
(``skbnn.likelihoods.Categorical.hessian_factor`` and its kin).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from .utils._tree import get_path, set_path

__all__ = [
    "STRUCTURES",
    "Block",
    "Diagonal",
    "Full",
    "Kronecker",
    "LowRank",
    "Structure",
    "dense_probe",
    "dense_stats",
    "get_structure",
    "hessian_factor",
    "row_jacobians",
]


class Block(NamedTuple):
    """One block of the GGN in its eigenbasis: eigenvalues ``lam`` and the mode
    ``u`` in that basis (for the marginal likelihood)."""

    lam: jax.Array
    u: jax.Array


# ---------------------------------------------------------------------------
# Shared helpers: layers, the likelihood's Hessian factor, Jacobians


def layers(covered):
    """Covered layers by block name: one layer ``""``, or a dict of layers."""
    return {"": covered} if "kernel" in covered else covered


def unlayers(covered, by_layer):
    """The inverse of :func:`layers` for a tree shaped like ``covered``."""
    return by_layer[""] if "kernel" in covered else by_layer


def layer_matrix(layer):
    """``[kernel; bias]``, shape ``(fan_in + 1, fan_out)``."""
    return jnp.concatenate([layer["kernel"], layer["bias"][None]], axis=0)


def is_dense(layer):
    return set(layer) == {"kernel", "bias"} and len(layer["kernel"].shape) == 2


def all_dense(covered):
    return all(is_dense(layer) for layer in layers(covered).values())


def n_values(tree):
    return sum(int(np.prod(np.shape(x))) for x in jax.tree.leaves(tree))


def hessian_factor(model, params, outputs, weight):
    """``A`` with ``A A^T`` the weighted Hessian of the negative log-likelihood in the
    outputs, ``(n, n_outputs, n_columns)``: the likelihood's ``hessian_factor``."""
    factor = getattr(model.likelihood, "hessian_factor", None)
    if factor is None:
        raise ValueError(
            f"Laplace has no GGN for the {type(model.likelihood).__name__} likelihood: it "
            "has no hessian_factor."
        )
    return factor(params["likelihood"], outputs) * jnp.sqrt(weight)[:, None, None]


def row_jacobians(fn, theta, X):
    """Jacobian of each row of ``fn(theta, X)`` (shape ``(n, K)``) w.r.t. ``theta``.

    Leaves ``(n, K, *shape)``. Rows are independent, so each row's Jacobian is
    taken on that row alone (vmapped): ``n * K`` backward passes through one
    row, where ``jax.jacrev`` of the whole chunk would take ``n * K`` passes
    through all ``n`` rows.
    """
    def one(x):
        return jax.tree.map(lambda j: j[0], jax.jacrev(fn)(theta, x[None]))

    return jax.vmap(one)(X)


def flat_jacobian(jac):
    """A Jacobian pytree with leaves ``(n, K, ...)`` as one ``(n, K, P)`` array."""
    return jnp.concatenate(
        [x.reshape(x.shape[:2] + (-1,)) for x in jax.tree.leaves(jac)], axis=-1
    )


def dense_probe(model, params, subset, X):
    """Watch the covered dense layers on ``X`` (the one place that sets up the probes).

    Returns ``(outputs, vjp, a)``: the network's outputs, the vector-Jacobian
    product from output cotangents to each covered layer's output (a dict by
    block name, see :func:`layers`), and each layer's inputs with a 1 appended
    ``(n, fan_in + 1)``; or None when a covered block is not a dense layer.
    Built on :meth:`skbnn.networks.Network.apply_with_probes`.
    """
    covered = get_path(params, subset)
    prefix = "/".join(subset[1:])
    names = {name: "/".join(p for p in (prefix, name) if p) for name in layers(covered)}
    record = set(names.values())
    net = params["network"]
    _, _, shapes = jax.eval_shape(lambda: model.network.apply_with_probes(net, X, None, record))
    if set(shapes) != record:
        return None
    probes = {k: jnp.zeros(v.shape, v.dtype) for k, v in shapes.items()}

    def f(probes):
        out, inputs, _ = model.network.apply_with_probes(net, X, probes, record)
        return out, inputs

    out, vjp_full, inputs = jax.vjp(f, probes, has_aux=True)
    ones = jnp.ones((X.shape[0], 1), out.dtype)
    a = {name: jnp.concatenate([inputs[full], ones], axis=1) for name, full in names.items()}

    def vjp(cotangent):
        (grads,) = vjp_full(cotangent)
        return {name: grads[full] for name, full in names.items()}

    return out, vjp, a


def dense_stats(model, params, subset, batch):
    """Per covered dense layer: its inputs with a 1 appended ``a`` ``(n, fan_in + 1)``
    and the back-propagated columns of the Hessian factor ``g`` ``(C, n, fan_out)``;
    and the network's outputs."""
    probed = dense_probe(model, params, subset, batch.X)
    if probed is None:
        raise ValueError(
            "This curvature needs the covered weights to be the network's Dense layers. "
            "Use 'diag', 'lowrank' or 'full'."
        )
    out, vjp, a = probed
    factor = hessian_factor(model, params, out, batch.weight)
    g = jax.vmap(vjp, in_axes=2)(factor)
    return out, a, g


# ---------------------------------------------------------------------------
# The interface


class Structure:
    """Base class: see the module notes for the interface."""

    name = None
    #: Whether the curvature is summed as a matrix (False: GGN-vector products only).
    summed = True

    def check(self, covered):
        """Raise ``ValueError`` when the covered weights do not fit this structure."""

    def values_per_row(self, n_outputs, width, covered):
        """Values held per row of a curvature chunk (chunks hold about 2**24)."""
        return n_outputs * width

    def zeros(self, covered):
        raise NotImplementedError

    def accumulate(self, model, params, subset, batch):
        raise NotImplementedError

    def eigen(self, curvature, covered, n_eff):
        raise NotImplementedError

    def factors(self, covered, eig, delta):
        raise NotImplementedError

    def quadratic(self, curvature, diff, n_eff):
        """``diff^T H diff`` for the summed curvature ``H`` (``curvature`` as
        ``accumulate`` sums it over ``n_eff`` rows) and ``diff`` a tree like the
        covered weights: the log-likelihood of the rows behind ``H`` is, to second
        order, ``-1/2`` of it around their mode. ``partial_fit`` carries a Laplace
        posterior to the next batch with it."""
        raise ValueError(
            f"hessian_structure={self.name!r} keeps no summed curvature to carry to the next "
            "batch; use 'kron', 'diag' or 'full'.")

    def sample(self, rng_key, mean, factors, n):
        raise NotImplementedError

    def log_det(self, mean, factors):
        raise NotImplementedError

    def variance(self, mean, factors):
        raise NotImplementedError

    def output_cov(self, mean, factors, jac):
        raise NotImplementedError

    def dense_layer_cov(self, factors, name, a, g):
        """``J Sigma J^T`` of one dense layer from its inputs ``a`` and output gradients
        ``g`` (``(K, n, fan_out)``), or None where the structure has no shortcut."""
        return None


class Diagonal(Structure):
    """Independent parameters: ``factors = {"scale": tree of standard deviations}``.

    Curvature: the GGN's exact diagonal; for dense layers from their inputs and
    back-propagated factors, for any other layer (a convolution, whose weights
    are shared across positions) from per-row vector-Jacobian products.
    """

    name = "diag"

    def values_per_row(self, n_outputs, width, covered):
        if all_dense(covered):
            return n_outputs * width
        return n_values(covered) + n_outputs * width  # one gradient per row at a time

    def zeros(self, covered):
        return {name: jax.tree.map(jnp.zeros_like, layer)
                for name, layer in layers(covered).items()}

    def accumulate(self, model, params, subset, batch):
        if not all_dense(get_path(params, subset)):
            return self._accumulate_per_row(model, params, subset, batch)
        out, a, g = dense_stats(model, params, subset, batch)
        diag = {}
        for name in a:
            d = jnp.einsum("bi,cbo->io", a[name] ** 2, g[name] ** 2)
            diag[name] = {"kernel": d[:-1], "bias": d[-1]}
        return out, diag

    @staticmethod
    def _accumulate_per_row(model, params, subset, batch):
        """``sum_n sum_c (J_n^T A_n[:, c])^2`` with one vector-Jacobian product per row
        and column: the per-row gradient is squared before the rows are summed."""
        covered = get_path(params, subset)

        def one_row(x, weight):
            def row_outputs(theta):
                return model.network.apply(set_path(params, subset, theta)["network"], x[None])

            out, vjp = jax.vjp(row_outputs, covered)
            factor = hessian_factor(model, params, out, weight[None])  # (1, K, C)

            def column(acc, col):
                (grad,) = vjp(col[None])
                return jax.tree.map(lambda s, t: s + jnp.square(t), acc, grad), None

            acc, _ = jax.lax.scan(column, jax.tree.map(jnp.zeros_like, covered), factor[0].T)
            return out[0], acc

        out, per_row = jax.vmap(one_row)(batch.X, batch.weight)
        return out, layers(jax.tree.map(lambda t: jnp.sum(t, axis=0), per_row))

    def eigen(self, curvature, covered, n_eff):
        blocks = {name: Block(ravel_pytree(curvature[name])[0], ravel_pytree(layer)[0])
                  for name, layer in layers(covered).items()}
        return blocks, {"lam": curvature}

    def quadratic(self, curvature, diff, n_eff):
        return sum(jnp.sum(lam * jnp.square(d)) for lam, d in
                   zip(jax.tree.leaves(curvature), jax.tree.leaves(layers(diff))))

    def factors(self, covered, eig, delta):
        scale = {name: jax.tree.map(lambda v, d=delta[name]: 1.0 / jnp.sqrt(v + d), lam)
                 for name, lam in eig["lam"].items()}
        return {"scale": unlayers(covered, scale)}

    def sample(self, rng_key, mean, factors, n):
        scale = factors["scale"]
        leaves, treedef = jax.tree.flatten(mean)
        keys = jax.random.split(rng_key, len(leaves))
        eps = [jax.random.normal(k, (n, *m.shape), m.dtype) for k, m in zip(keys, leaves)]
        return jax.tree.map(lambda m, s, e: m + s * e, mean, scale,
                            jax.tree.unflatten(treedef, eps))

    def log_det(self, mean, factors):
        return 2.0 * sum(jnp.sum(jnp.log(s)) for s in jax.tree.leaves(factors["scale"]))

    def variance(self, mean, factors):
        return jax.tree.map(jnp.square, factors["scale"])

    def output_cov(self, mean, factors, jac):
        j = flat_jacobian(jac)
        var, _ = ravel_pytree(jax.tree.map(jnp.square, factors["scale"]))
        return jnp.einsum("bkp,p,blp->bkl", j, var, j)

    def dense_layer_cov(self, factors, name, a, g):
        scale = layers(factors["scale"])[name]
        var = jnp.concatenate([scale["kernel"], scale["bias"][None]], axis=0) ** 2
        return jnp.einsum("kbj,lbj,bj->bkl", g, g, (a**2) @ var)


class Kronecker(Structure):
    """K-FAC: one Kronecker-factored block per dense layer over ``[kernel; bias]``
    (``(fan_in + 1, fan_out)``, the bias the last row, raveled row-major).

    The curvature of a block is ``Q ⊗ G`` with ``Q = sum_n w_n a_n a_n^T`` and
    ``G = sum_nc g_nc g_nc^T / sum_n w_n``; its precision ``Q ⊗ G + delta I``
    has eigenvalues ``outer(vals_in, vals_out) + delta`` and eigenvectors
    ``kron(vecs_in, vecs_out)``. Factors: ``{block: {"vecs_in", "vals_in",
    "vecs_out", "vals_out", "prior_precision"}}``.
    """

    name = "kron"

    def check(self, covered):
        for name, layer in layers(covered).items():
            if not is_dense(layer):
                raise ValueError(
                    f"hessian_structure='kron' needs dense layers; layer {name!r} of "
                    "the covered weights is not one. Use 'diag', 'lowrank' or 'full'."
                )

    def zeros(self, covered):
        return {
            name: {"Q": jnp.zeros((m.shape[0], m.shape[0]), m.dtype),
                   "G": jnp.zeros((m.shape[1], m.shape[1]), m.dtype)}
            for name, m in ((n, layer_matrix(layer)) for n, layer in layers(covered).items())
        }

    def accumulate(self, model, params, subset, batch):
        out, a, g = dense_stats(model, params, subset, batch)
        return out, {
            name: {"Q": jnp.einsum("b,bi,bj->ij", batch.weight, a[name], a[name]),
                   "G": jnp.einsum("cbo,cbp->op", g[name], g[name])}
            for name in a
        }

    def eigen(self, curvature, covered, n_eff):
        blocks, eig = {}, {}
        for name, layer in layers(covered).items():
            vals_in, vecs_in = jnp.linalg.eigh(curvature[name]["Q"])
            vals_out, vecs_out = jnp.linalg.eigh(curvature[name]["G"] / n_eff)
            vals_in, vals_out = jnp.maximum(vals_in, 0.0), jnp.maximum(vals_out, 0.0)
            u = vecs_in.T @ layer_matrix(layer) @ vecs_out
            blocks[name] = Block(jnp.outer(vals_in, vals_out).ravel(), u.ravel())
            eig[name] = {"vecs_in": vecs_in, "vals_in": vals_in,
                         "vecs_out": vecs_out, "vals_out": vals_out}
        return blocks, eig

    def factors(self, covered, eig, delta):
        return {name: {**e, "prior_precision": delta[name]} for name, e in eig.items()}

    def quadratic(self, curvature, diff, n_eff):
        # vec(D)^T (Q kron G) vec(D) = sum(D * (Q D G)) for D row-major (fan_in + 1, fan_out)
        total = 0.0
        for name, layer in layers(diff).items():
            d = layer_matrix(layer)
            c = curvature[name]
            total = total + jnp.sum(d * (c["Q"] @ d @ (c["G"] / n_eff)))
        return total

    @staticmethod
    def _inv_eigvals(f):
        return 1.0 / (jnp.outer(f["vals_in"], f["vals_out"]) + f["prior_precision"])

    def sample(self, rng_key, mean, factors, n):
        by_layer = layers(mean)
        keys = jax.random.split(rng_key, len(by_layer))
        drawn = {}
        for key, name in zip(keys, sorted(by_layer)):
            layer, f = by_layer[name], factors[name]
            scale = jnp.sqrt(self._inv_eigvals(f))
            eps = jax.random.normal(key, (n, *scale.shape), scale.dtype) * scale
            delta = jnp.einsum("ia,nab,jb->nij", f["vecs_in"], eps, f["vecs_out"])
            drawn[name] = {"kernel": layer["kernel"] + delta[:, :-1],
                           "bias": layer["bias"] + delta[:, -1]}
        return unlayers(mean, drawn)

    def log_det(self, mean, factors):
        return sum(jnp.sum(jnp.log(self._inv_eigvals(f))) for f in factors.values())

    def variance(self, mean, factors):
        out = {}
        for name, f in factors.items():
            var = jnp.square(f["vecs_in"]) @ self._inv_eigvals(f) @ jnp.square(f["vecs_out"]).T
            out[name] = {"kernel": var[:-1], "bias": var[-1]}
        return unlayers(mean, out)

    def output_cov(self, mean, factors, jac):
        cov = 0.0
        for name, j in layers(jac).items():
            f = factors[name]
            jm = jnp.concatenate([j["kernel"], j["bias"][:, :, None]], axis=2)
            m = jnp.einsum("ia,bkij,jc->bkac", f["vecs_in"], jm, f["vecs_out"])
            cov = cov + jnp.einsum("bkac,ac,blac->bkl", m, self._inv_eigvals(f), m)
        return cov

    def dense_layer_cov(self, factors, name, a, g):
        f = factors[name]
        a = a @ f["vecs_in"]
        g = jnp.einsum("kbj,jc->kbc", g, f["vecs_out"])
        return jnp.einsum("kbj,lbj,bj->bkl", g, g, (a**2) @ self._inv_eigvals(f))


class Full(Structure):
    """The whole covariance of the raveled covered parameters (``ravel_pytree``
    order): ``factors = {"scale_tril": (P, P)}``, its lower Cholesky factor."""

    name = "full"
    #: Above this many covered weights the P x P matrix is refused.
    max_params = 10_000

    def check(self, covered):
        n = n_values(covered)
        if n > self.max_params:
            raise ValueError(
                f"hessian_structure='full' stores a {n} x {n} matrix for the covered "
                f"weights; it is limited to {self.max_params} weights. Use 'kron', 'diag' "
                "or 'lowrank', or subset_of_weights='last_layer'."
            )

    def values_per_row(self, n_outputs, width, covered):
        return n_outputs * n_values(covered)

    def zeros(self, covered):
        flat, _ = ravel_pytree(covered)
        return {"G": jnp.zeros((flat.shape[0], flat.shape[0]), flat.dtype)}

    def accumulate(self, model, params, subset, batch):
        flat, unravel = ravel_pytree(get_path(params, subset))

        def outputs(theta, X):
            return model.network.apply(set_path(params, subset, unravel(theta))["network"], X)

        out = outputs(flat, batch.X)
        jac = row_jacobians(outputs, flat, batch.X)  # (n, K, P)
        factor = hessian_factor(model, params, out, batch.weight)
        m = jnp.einsum("bkc,bkp->bcp", factor, jac).reshape(-1, flat.shape[0])
        return out, {"G": m.T @ m}

    def eigen(self, curvature, covered, n_eff):
        flat, _ = ravel_pytree(covered)
        g = curvature["G"]
        lam, vecs = jnp.linalg.eigh(0.5 * (g + g.T))
        lam = jnp.maximum(lam, 0.0)
        return {"": Block(lam, flat)}, {"eigvecs": vecs, "eigvals": lam}

    def quadratic(self, curvature, diff, n_eff):
        d, _ = ravel_pytree(diff)
        return d @ curvature["G"] @ d

    def factors(self, covered, eig, delta):
        vecs, lam = eig["eigvecs"], eig["eigvals"]
        cov = (vecs / (lam + delta[""])) @ vecs.T
        return {"scale_tril": jnp.linalg.cholesky(0.5 * (cov + cov.T))}

    def sample(self, rng_key, mean, factors, n):
        flat, unravel = ravel_pytree(mean)
        tril = factors["scale_tril"]
        eps = jax.random.normal(rng_key, (n, flat.shape[0]), flat.dtype)
        return jax.vmap(unravel)(flat + eps @ tril.T)

    def log_det(self, mean, factors):
        return 2.0 * jnp.sum(jnp.log(jnp.diag(factors["scale_tril"])))

    def variance(self, mean, factors):
        _, unravel = ravel_pytree(mean)
        return unravel(jnp.sum(jnp.square(factors["scale_tril"]), axis=1))

    def output_cov(self, mean, factors, jac):
        js = flat_jacobian(jac) @ factors["scale_tril"]
        return jnp.einsum("bkp,blp->bkl", js, js)


class LowRank(Structure):
    """The top ``rank`` eigenpairs of the GGN, found by Lanczos iteration on
    GGN-vector products (the matrix is never stored): precision ``U diag(eigvals)
    U^T + prior_precision I`` with ``U`` ``(P, rank)`` orthonormal.
    ``factors = {"eigvecs", "eigvals", "prior_precision"}``."""

    name = "lowrank"
    summed = False

    def zeros(self, covered):
        return {}

    def eigen(self, curvature, covered, n_eff):
        # outside the kept eigenvectors the curvature is 0: those directions add
        # only the prior's -delta/2 |u|^2 (and log-determinant terms that cancel)
        flat, _ = ravel_pytree(covered)
        vecs, lam = curvature["eigvecs"], curvature["eigvals"]
        return {"": Block(lam, flat)}, {"eigvecs": vecs, "eigvals": lam}

    def factors(self, covered, eig, delta):
        return {**eig, "prior_precision": delta[""]}

    @staticmethod
    def _gap(factors):
        """Covariance in the span of ``eigvecs`` minus the isotropic part: ``1/(λ+δ) - 1/δ``."""
        delta = factors["prior_precision"]
        return 1.0 / (factors["eigvals"] + delta) - 1.0 / delta

    def sample(self, rng_key, mean, factors, n):
        flat, unravel = ravel_pytree(mean)
        u, lam, delta = factors["eigvecs"], factors["eigvals"], factors["prior_precision"]
        z = jax.random.normal(rng_key, (n, flat.shape[0]), flat.dtype)
        # (I/sqrt(δ) + U diag(c) U^T) is a symmetric square root of the covariance
        c = 1.0 / jnp.sqrt(lam + delta) - 1.0 / jnp.sqrt(delta)
        x = z / jnp.sqrt(delta) + ((z @ u) * c) @ u.T
        return jax.vmap(unravel)(flat + x)

    def log_det(self, mean, factors):
        lam, delta = factors["eigvals"], factors["prior_precision"]
        n_params = factors["eigvecs"].shape[0]
        return -jnp.sum(jnp.log(lam + delta)) - (n_params - lam.shape[0]) * jnp.log(delta)

    def variance(self, mean, factors):
        _, unravel = ravel_pytree(mean)
        var = 1.0 / factors["prior_precision"] + jnp.square(factors["eigvecs"]) @ self._gap(factors)
        return unravel(var)

    def output_cov(self, mean, factors, jac):
        j = flat_jacobian(jac)
        ju = j @ factors["eigvecs"]
        iso = jnp.einsum("bkp,blp->bkl", j, j) / factors["prior_precision"]
        return iso + jnp.einsum("bkr,r,blr->bkl", ju, self._gap(factors), ju)


#: The structures by the name ``hessian_structure=`` and ``GaussianPosterior`` use.
STRUCTURES = {s.name: s for s in (Diagonal(), Kronecker(), LowRank(), Full())}


def get_structure(name) -> Structure:
    """The structure registered as ``name``; ``ValueError`` naming the others if none."""
    try:
        return STRUCTURES[name]
    except KeyError:
        raise ValueError(
            f"Covariance structure {name!r} is not available; available: {sorted(STRUCTURES)}."
        ) from None
