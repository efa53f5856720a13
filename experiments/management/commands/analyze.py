import json
import math
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from analysis.rows import SESSIONS, RowFilter
from analysis.stats import N_RESAMPLES
from analysis.study import to_json
from experiments.analysis_frames import analyze_database
from experiments.management.commands.export_responses import chosen_studies
from experiments.reports import write_report


def _plain(value: Any) -> Any:
    """JSON without NaN (which is not JSON): null where a statistic is undefined."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


class Command(BaseCommand):
    help = (
        "Analyse studies (every study when none is named): unit scores, the model score with bootstrap CIs, "
        "participant summaries, depth and confidence, and the comparison across them; as JSON (--json) "
        "and/or an HTML report (--report FILE)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("studies", nargs="*", help="Study slugs (default: every study).")
        parser.add_argument("--json", action="store_true", help="Print the analysis as JSON.")
        parser.add_argument("--report", metavar="FILE", help="Write the report as a self-contained HTML file.")
        parser.add_argument("--sessions", choices=SESSIONS, default="passing", help="Which sessions count.")
        parser.add_argument("--seed", type=int, default=0, help="Seeds the bootstrap.")
        parser.add_argument("--resamples", type=int, default=N_RESAMPLES, help="Bootstrap resamples.")

    def handle(self, *args: Any, studies: list[str], json: bool, report: str | None, sessions: str, seed: int,
               resamples: int, **options: Any) -> None:
        if not json and not report:
            raise CommandError("Say what to write: --json, --report FILE, or both.")
        chosen = chosen_studies(studies)
        result = analyze_database(chosen, row_filter=RowFilter(sessions=sessions), seed=seed, n_resamples=resamples)
        if report:
            write_report(result, report)
            self.stderr.write(f"Wrote {report} ({len(result['studies'])} studies).")
        if json:
            self.stdout.write(_dumps(_plain(to_json(result))))


def _dumps(data: Any) -> str:
    return json.dumps(data, indent=2, allow_nan=False)
