"""The platform's statistics as plain functions over pandas dataframes and numpy arrays.

Nothing here imports Django or the rest of the project, so the same code runs in
the admin, in `manage.py analyze`, and in a notebook on an exported dataset
bundle (analysis.bundle.read_bundle). The columns the functions read are the
dataset export's (docs/analysis.md lists them):

- rows.py: which responses count (passing sessions, main non-catch trials) and every exclusion;
- scores.py: unit scores per protocol (2-AFC proportion correct; the chance-anchored
  localizability and nameability scores);
- stats.py: bootstrap CIs over units, Kruskal-Wallis with Conover-Holm, Spearman,
  participant summaries (mean +- 1.96 SEM);
- study.py: one study's (or condition's) whole analysis, and the comparison across them, as JSON;
- plots.py: the report's figures as SVG (matplotlib, imported only when a figure is drawn).
"""
