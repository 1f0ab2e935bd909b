"""flowprior: sequential Bayesian calibration with normalizing-flow priors.

The package root imports nothing heavy, so ``import flowprior`` and
``flowprior --version`` stay fast; ``flowprior.FlowPrior`` and ``flowprior.BoxPrior``
are imported on first use.
"""

__version__ = "0.1.0.dev0"

__all__ = ["BoxPrior", "FlowPrior", "__version__"]


def __getattr__(name: str):
    if name in ("FlowPrior", "BoxPrior"):
        from . import priors

        return getattr(priors, name)
    raise AttributeError(f"module 'flowprior' has no attribute {name!r}")
