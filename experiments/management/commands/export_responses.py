import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from experiments.export.formats import FORMATS
from experiments.export.responses import responses_table
from experiments.models import Study


def chosen_studies(slugs: list[str]) -> list[Study]:
    """The studies named (every study when none is), refusing unknown slugs by name."""
    chosen = list(Study.objects.filter(slug__in=slugs) if slugs else Study.objects.order_by("pk"))
    unknown = set(slugs) - {study.slug for study in chosen}
    if unknown:
        raise CommandError(f"unknown studies: {', '.join(sorted(unknown))}")
    return chosen


class Command(BaseCommand):
    help = "Write every response of the given studies as CSV, JSON Lines or Parquet (streamed)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("studies", nargs="*", help="Study slugs (default: all studies).")
        parser.add_argument("--format", choices=sorted(FORMATS), default="csv")
        parser.add_argument("--output", "-o", help="File to write (default: standard output).")

    def handle(self, *args: Any, studies: list[str], format: str, output: str | None, **options: Any) -> None:
        chunks = FORMATS[format](responses_table(chosen_studies(studies)))
        if output:
            with open(output, "wb") as stream:
                stream.writelines(chunks)
        elif format == "parquet":
            raise CommandError("Parquet is binary: give a file with --output.")
        else:
            for chunk in chunks:
                self.stdout.write(chunk.decode(), ending="")
            sys.stdout.flush()
