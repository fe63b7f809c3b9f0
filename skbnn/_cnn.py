"""Bayesian convolutional classifier: the MLP classifier's interface for images."""

import math
from numbers import Integral

import numpy as np
import scipy.sparse as sp
from sklearn.utils.validation import check_is_fitted

from ._base import BaseBayesianNetwork, BayesianClassifierMixin
from ._mlp import _COMMON_ATTRIBUTES, _COMMON_PARAMETERS
from .networks import build_cnn
from .utils._io import serializable
from .utils._sklearn_compat import Interval, StrOptions

__all__ = ["BayesianCNNClassifier"]

# The MLP's parameters from ``activation`` on (hidden_layer_sizes is documented
# here with its own meaning and default).
_PARAMETERS = "activation :" + _COMMON_PARAMETERS.split("\n    activation :", 1)[1]


def _rows_and_shape(X):
    """Flatten image batches to rows; return ``(X, image_shape or None)``.

    ``(n, H, W, C)`` and ``(n, H, W)`` (one channel) give rows of ``H*W*C``
    values and their image shape; anything else (2-D tables, sparse matrices,
    data frames, or invalid input) passes through unchanged, for scikit-learn's
    validation to accept or reject.
    """
    if sp.issparse(X) or hasattr(X, "iloc"):
        return X, None
    ndim = getattr(X, "ndim", None)
    if ndim is None:
        # np.asarray, not np.ndim: array-likes that only offer __array__ refuse
        # numpy's function protocol
        try:
            ndim = np.asarray(X).ndim
        except (TypeError, ValueError):  # ragged nested lists: let validation say so
            return X, None
    if ndim <= 2:
        return X, None
    X = np.asarray(X)
    if ndim == 3:
        X = X[..., np.newaxis]
    elif ndim > 4:
        raise ValueError(
            f"X must be (n_samples, height, width, channels), (n_samples, height, width) "
            f"or (n_samples, n_features); got an array of shape {X.shape}."
        )
    shape = tuple(int(s) for s in X.shape[1:])
    return X.reshape(X.shape[0], math.prod(shape)), shape


@serializable
class BayesianCNNClassifier(BayesianClassifierMixin, BaseBayesianNetwork):
    __doc__ = f"""Bayesian convolutional network classifier for images.

    The interface of :class:`BayesianMLPClassifier` (every inference strategy,
    ``predict_proba``, ``predict_uncertainty``, ``sample_predictions``) on a
    network of convolutions followed by a dense head. Each convolution is
    followed by the activation and, unless ``pooling=None``, a 2x2 pooling of
    stride 2. The defaults are a LeNet-like network.

    Parameters
    ----------
    conv_channels : array-like of int, default=(32, 64)
        Number of output channels of each convolution.

    kernel_size : int, default=5
        Height and width of every convolution kernel.

    stride : int, default=1
        Stride of every convolution.

    padding : {{'same', 'valid'}}, default='same'
        'same' keeps the spatial size (before pooling); 'valid' uses no padding.

    pooling : {{'max', 'avg'}} or None, default='max'
        Pooling after each convolution (2x2 window, stride 2). An image axis of
        length 1 is not pooled.

    image_shape : tuple of int or None, default=None
        ``(height, width)`` or ``(height, width, channels)`` of the images when
        ``X`` is given as 2-D rows of ``height * width * channels`` values (in
        row-major ``(height, width, channels)`` order). None: square one-channel
        images when the number of features is a perfect square, else ``(1,
        n_features, 1)``. Images given as 3-D or 4-D arrays carry their own shape.

    hidden_layer_sizes : array-like of int, default=(128,)
        Widths of the dense layers between the flattened convolution output
        and the output layer; ``()`` for none.

    {_PARAMETERS}
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.

    image_shape_ : tuple of int
        ``(height, width, channels)`` of the images the network was fitted on;
        rows of ``X`` at prediction are read in this shape.
    {_COMMON_ATTRIBUTES}
    See Also
    --------
    BayesianMLPClassifier : The same estimator with a fully connected network.

    Notes
    -----
    ``X`` may be ``(n_samples, height, width, channels)``, ``(n_samples, height,
    width)`` (one channel) or ``(n_samples, n_features)`` (see ``image_shape``);
    ``n_features_in_`` counts the values of one image. ``coefs_`` holds the
    convolution kernels, of shape ``(kernel_size, kernel_size, in_channels,
    out_channels)``, then the dense weight matrices. Predictions run in chunks
    of rows sized by the largest activation, one draw after another, so memory
    stays bounded for any number of images and draws.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skbnn import BayesianCNNClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = BayesianCNNClassifier(conv_channels=(8,), hidden_layer_sizes=(32,),
    ...                             inference="map", max_iter=5, random_state=0)
    >>> clf.fit(X[:500] / 16, y[:500]).image_shape_
    (8, 8, 1)
    >>> clf.predict_proba(X[500:501] / 16).shape
    (1, 10)
    """

    _parameter_constraints: dict = {
        **BaseBayesianNetwork._parameter_constraints,
        "conv_channels": ["array-like", Interval(Integral, 1, None, closed="left")],
        "kernel_size": [Interval(Integral, 1, None, closed="left")],
        "stride": [Interval(Integral, 1, None, closed="left")],
        "padding": [StrOptions({"same", "valid"})],
        "pooling": [StrOptions({"max", "avg"}), None],
        "image_shape": ["array-like", None],
    }

    def __init__(
        self,
        conv_channels=(32, 64),
        kernel_size=5,
        *,
        stride=1,
        padding="same",
        pooling="max",
        image_shape=None,
        hidden_layer_sizes=(128,),
        activation="relu",
        inference="psgld",
        alpha=1.0,
        batch_size="auto",
        learning_rate_init=0.001,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        solver="adam",
        learning_rate="constant",
        power_t=0.5,
        momentum=0.9,
        nesterovs_momentum=True,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        max_fun=15000,
        stream_data="auto",
    ):
        self.conv_channels = conv_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.pooling = pooling
        self.image_shape = image_shape
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.inference = inference
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.solver = solver
        self.learning_rate = learning_rate
        self.power_t = power_t
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.max_fun = max_fun
        self.stream_data = stream_data

    def _conv_channels(self):
        channels = self.conv_channels
        channels = (channels,) if isinstance(channels, Integral) else tuple(channels)
        if any(not isinstance(c, Integral) or c < 1 for c in channels):
            raise ValueError(f"conv_channels must be > 0, got {self.conv_channels}.")
        return tuple(int(c) for c in channels)

    def _network(self, n_outputs):
        return build_cnn(self._conv_channels(), self.kernel_size, self.stride, self.padding,
                         self.pooling or "none", self._hidden_layer_sizes(), self.activation,
                         n_outputs)

    def _resolve_image_shape(self, n_features, given):
        """The ``(height, width, channels)`` that rows of ``n_features`` values are read in."""
        if self.image_shape is not None:
            shape = tuple(self.image_shape)
            if len(shape) == 2:
                shape = (*shape, 1)
            if len(shape) != 3 or any(not isinstance(s, Integral) or s < 1 for s in shape):
                raise ValueError(
                    "image_shape must be (height, width) or (height, width, channels) of "
                    f"positive ints, got {self.image_shape!r}."
                )
            shape = tuple(int(s) for s in shape)
            if given is not None and given != shape:
                raise ValueError(f"X holds images of shape {given}, but image_shape={shape}.")
            if math.prod(shape) != n_features:
                raise ValueError(
                    f"image_shape={shape} needs {math.prod(shape)} features per row, "
                    f"but X has {n_features}."
                )
            return shape
        if given is not None:
            return given
        side = math.isqrt(n_features)
        return (side, side, 1) if side * side == n_features else (1, n_features, 1)

    def fit(self, X, y, sample_weight=None):
        """Infer the posterior over the network's parameters from ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width, channels), \
(n_samples, height, width) or (n_samples, n_features)
            Training images; 2-D rows are read as images of ``image_shape``.
        y : array-like of shape (n_samples,)
            Target labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Frequency weights of the rows.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        X, shape = _rows_and_shape(X)
        # _prepare_inputs, which the shared fit calls on the validated rows,
        # resolves the image shape from this.
        self._fit_images_shape = shape
        try:
            return super().fit(X, y, sample_weight)
        finally:
            del self._fit_images_shape

    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the posterior with a batch of images: see
        :meth:`BayesianMLPClassifier.partial_fit <skbnn.BayesianMLPClassifier.partial_fit>`.
        The first call fixes ``image_shape_``."""
        X, shape = _rows_and_shape(X)
        if hasattr(self, "image_shape_") and hasattr(self, "posterior_"):
            if shape is not None and shape != tuple(self.image_shape_):
                raise ValueError(
                    f"X holds images of shape {shape}, but {type(self).__name__} was fitted "
                    f"on images of shape {tuple(self.image_shape_)}.")
            return super().partial_fit(X, y, sample_weight, classes)
        self._fit_images_shape = shape
        try:
            return super().partial_fit(X, y, sample_weight, classes)
        finally:
            del self._fit_images_shape

    def _prepare_inputs(self, X):
        X = super()._prepare_inputs(X)
        if sp.issparse(X):  # images are convolved dense: a sparse matrix is densified
            X = X.toarray()
        if hasattr(self, "_fit_images_shape"):
            self.image_shape_ = self._resolve_image_shape(X.shape[1], self._fit_images_shape)
        return X.reshape(X.shape[0], *self.image_shape_)

    def _validated_inputs(self, X):
        check_is_fitted(self)
        X, shape = _rows_and_shape(X)
        if shape is not None and shape != tuple(self.image_shape_):
            raise ValueError(
                f"X holds images of shape {shape}, but {type(self).__name__} was fitted "
                f"on images of shape {tuple(self.image_shape_)}."
            )
        return super()._validated_inputs(X)
