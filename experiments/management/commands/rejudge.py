from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from experiments.management.commands.export_responses import chosen_studies
from experiments.verdicts import rejudged, stored_verdict


class Command(BaseCommand):
    help = (
        "Judge every response of the given studies again from its stored answer, key and kept maps, and fail "
        "when a verdict differs from the stored one (a study imported from a dataset bundle judges as its "
        "source did)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("studies", nargs="*", help="Study slugs (default: all studies).")

    def handle(self, *args: Any, studies: list[str], **options: Any) -> None:
        differing = []
        for study in chosen_studies(studies):
            judged = differ = 0
            for response, verdict in rejudged(study):
                judged += 1
                differ += verdict != stored_verdict(response)
            self.stdout.write(f"{study.slug}: {judged} responses judged again, {differ} verdicts differ.")
            if differ:
                differing.append(study.slug)
        if differing:
            raise CommandError(f"Verdicts differ from the stored ones in {', '.join(differing)}.")
