from django.core.management.base import BaseCommand, CommandError, CommandParser

from experiments import export
from experiments.models import Study


class Command(BaseCommand):
    help = "Write every response of the given studies as CSV or JSON Lines (streamed)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("studies", nargs="*", help="Study slugs (default: all studies).")
        parser.add_argument("--format", choices=sorted(export.FORMATS), default="csv")
        parser.add_argument("--output", "-o", help="File to write (default: standard output).")

    def handle(self, *args, studies: list[str], format: str, output: str | None, **options) -> None:
        chosen = Study.objects.filter(slug__in=studies) if studies else Study.objects.all()
        unknown = set(studies) - set(chosen.values_list("slug", flat=True))
        if unknown:
            raise CommandError(f"unknown studies: {', '.join(sorted(unknown))}")
        fieldnames, records = export.dataset(chosen)
        lines = export.FORMATS[format](records, fieldnames)
        if output:
            with open(output, "w", newline="") as stream:
                stream.writelines(lines)
        else:
            for line in lines:
                self.stdout.write(line, ending="")
