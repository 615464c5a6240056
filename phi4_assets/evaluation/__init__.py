"""Evaluation: SimpleQA-style grading (``graders``), metrics with confidence intervals
(``metrics``), evaluating a model directory on ``eval_sets`` rows (``runner``), the report's
Table 9 and Figure 6 (``report``), and ``phi4 eval`` (``cli``).

Nothing is imported here: ``phi4_assets.cli.main`` imports ``evaluation.cli`` for every command, and
the submodules that need pandas or torch load them only when used.
"""
