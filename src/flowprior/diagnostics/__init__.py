"""Diagnostics of a sequential analysis, one module per subject.

==============  ===================================================================
module          subject
==============  ===================================================================
``twosample``   two sample sets from one distribution? :func:`moment_scores`,
                :func:`sliced_wasserstein`, :func:`c2st`
``agreement``   parameter-by-parameter agreement of two posteriors: :func:`agreement`
``tension``     tension before combining: :func:`evidence_ratio`,
                :func:`suspiciousness`, :func:`parameter_shift`
``shift``       non-Gaussian parameter shift with a trained flow:
                :func:`flow_parameter_shift`, :class:`ShiftSettings`
``modes``       multimodality: :func:`count_modes`, :func:`mode_masses`
``verdict``     the rules registry (:func:`register_rule`, :func:`default_thresholds`)
                and :func:`verdict`
``sequence``    the workflow's diagnostics: :func:`flow_fidelity`,
                :func:`diagnose_sequence` with its quantity registry
                (:func:`register_quantity`), :func:`analytic_reference`
``evidence``    log Z of two samplers at one stage in combined standard errors:
                :func:`evidence_consistency`
``comparison``  every sampler run of an analysis side by side (cost, accuracy against
                the exact answer, evidences): :func:`comparison_runs`,
                :func:`sampler_comparison`
``settings``    the config ``diagnostics`` mapping: :data:`DIAGNOSTIC_SETTINGS`,
                :func:`split_settings`
``tables``      :func:`analysis_tables`, :func:`tables_markdown`, :func:`cost_table`,
                :func:`study_markdown`
==============  ===================================================================

Weighted statistics (Kish ESS, weighted moments and quantiles) live in :mod:`flowprior.stats`.
Every function takes samples ``x`` ``(N, D)`` with optional importance weights ``w`` ``(N,)``
(None: equal weights; pocoMC chains are weighted and dropping the weights compares the wrong
distributions); bad input raises :class:`~flowprior.errors.InputError` (a ``ValueError``)
naming the argument. Anything random is driven by a ``seed``; no global random state is
touched. A new diagnostic is one quantity and one rule (``docs/extending.md``).
"""

from .agreement import agreement
from .comparison import comparison_runs, sampler_comparison
from .evidence import evidence_consistency
from .modes import ModeSummary, count_modes, mode_masses
from .sequence import (
    Quantity,
    SequenceRuns,
    analytic_reference,
    diagnose_sequence,
    flow_fidelity,
    quantities,
    register_quantity,
    unregister_quantity,
)
from .settings import DIAGNOSTIC_SETTINGS, split_settings
from .shift import ShiftSettings, flow_parameter_shift
from .tables import analysis_tables, cost_table, study_markdown, tables_markdown
from .tension import evidence_ratio, parameter_shift, suspiciousness
from .twosample import c2st, moment_scores, sliced_wasserstein
from .verdict import (
    Rule,
    Verdict,
    default_thresholds,
    get_rule,
    register_rule,
    rules,
    unregister_rule,
    verdict,
)

__all__ = [
    "DIAGNOSTIC_SETTINGS",
    "ModeSummary",
    "Quantity",
    "Rule",
    "SequenceRuns",
    "ShiftSettings",
    "Verdict",
    "agreement",
    "analysis_tables",
    "analytic_reference",
    "c2st",
    "comparison_runs",
    "cost_table",
    "count_modes",
    "default_thresholds",
    "diagnose_sequence",
    "evidence_consistency",
    "evidence_ratio",
    "flow_fidelity",
    "flow_parameter_shift",
    "get_rule",
    "mode_masses",
    "moment_scores",
    "parameter_shift",
    "quantities",
    "register_quantity",
    "register_rule",
    "rules",
    "sampler_comparison",
    "sliced_wasserstein",
    "split_settings",
    "study_markdown",
    "suspiciousness",
    "tables_markdown",
    "unregister_quantity",
    "unregister_rule",
    "verdict",
]
