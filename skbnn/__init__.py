"""skbnn: Bayesian neural networks for scikit-learn, compiled with JAX.

Importing skbnn changes no global JAX setting and allocates nothing on an
accelerator.
"""

from ._base import PredictiveUncertainty
from ._cnn import BayesianCNNClassifier
from ._mlp import BayesianMLPClassifier, BayesianMLPRegressor
from .ensemble import SampleEnsemble
from .utils._cache import enable_compilation_cache
from .utils._io import load_estimator as load
from .utils._parallel import parallel_config

__version__ = "0.1.0.dev0"

__all__ = [
    "BayesianCNNClassifier",
    "BayesianMLPClassifier",
    "BayesianMLPRegressor",
    "PredictiveUncertainty",
    "SampleEnsemble",
    "__version__",
    "enable_compilation_cache",
    "load",
    "parallel_config",
]
