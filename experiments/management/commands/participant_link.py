from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from experiments.links import participant_url
from experiments.models import Study


class Command(BaseCommand):
    help = (
        "Print participants' signed links to a study recruiting by local link (absolute, from PUBLIC_BASE_URL); "
        "a study that does not accept unsigned links starts only from these."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("study", help="The study's slug.")
        parser.add_argument("participants", nargs="+", help="One or more participant ids.")
        parser.add_argument("--base", help="The site's address, if not PUBLIC_BASE_URL.")

    def handle(self, *args: Any, study: str, participants: list[str], base: str | None, **options: Any) -> None:
        chosen = Study.objects.filter(slug=study).first()
        if chosen is None:
            raise CommandError(f"There is no study {study!r}.")
        for participant in participants:
            if not participant.strip():
                raise CommandError("A participant id cannot be blank.")
            self.stdout.write(participant_url(chosen, participant.strip(), base))
