"""Problems with known answers, and studies: the library's test beds.

- :mod:`flowprior.problems.targets`: target distributions with exact densities and exact
  samplers (``banana``, ``gaussian_7d``, ``mixture_7d``, ``funnel``), the ground truth of the
  flow-fidelity and training studies; :data:`PROBLEMS` and :func:`get_problem` are re-exported
  here.
- :mod:`flowprior.problems.analytic`: sequential-analysis problems whose likelihood plug-ins
  (``"flowprior.problems.analytic:<name>"``) have closed-form evidences and posteriors.
- :mod:`flowprior.problems.semf`: a real-data study, the semi-empirical mass formula on
  measured binding energies (``"flowprior.problems.semf:loglike"``); its extraction step needs
  the optional dependency ``mendeleev`` (extra ``semf``).

The two sub-modules with plug-ins are imported on demand (by their spec strings), not here.
"""

from __future__ import annotations

from .targets import PROBLEMS, Problem, get_problem

__all__ = ["PROBLEMS", "Problem", "get_problem"]
