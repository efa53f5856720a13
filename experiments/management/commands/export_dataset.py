from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from experiments.export.bundle import write_bundle
from experiments.management.commands.export_responses import chosen_studies


class Command(BaseCommand):
    help = (
        "Write a dataset bundle of the given studies: a zip of responses, shown images, units and sessions "
        "(CSV), and a datasheet (JSON)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("studies", nargs="*", help="Study slugs (default: all studies).")
        parser.add_argument("--output", "-o", required=True, help="The zip file to write.")

    def handle(self, *args: Any, studies: list[str], output: str, **options: Any) -> None:
        chosen = chosen_studies(studies)
        with open(output, "wb") as stream:
            write_bundle(chosen, stream)
        self.stdout.write(f"Wrote {output} ({len(chosen)} studies).")
