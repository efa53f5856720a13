from collections.abc import Callable, Sequence
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from experiments.export.reimport import BundleError, import_bundle
from experiments.models import Response, Study
from experiments.published import borowski2021, imi
from experiments.published.writer import PublishedDataError


def _one(reader: Callable[[str], list[Study]], name: str) -> Callable[[Sequence[str]], list[Study]]:
    def read(files: Sequence[str]) -> list[Study]:
        if len(files) != 1:
            raise CommandError(f"--format {name} reads one file, not {len(files)}.")
        return reader(files[0])

    return read


# Each format's reader, by the name --format takes.
READERS: dict[str, Callable[[Sequence[str]], list[Study]]] = {
    "bundle": _one(import_bundle, "bundle"),
    "borowski2021": borowski2021.import_files,
    "imi": _one(imi.import_file, "imi"),
}


class Command(BaseCommand):
    help = (
        "Read responses into new studies: a dataset bundle (from export_dataset or the admin), the released "
        "CSVs of Borowski et al. 2021 (--format borowski2021 FILE...), or the IMI dataset's responses CSV "
        "(--format imi FILE)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", help="The bundle's zip file, or the dataset's CSV files.")
        parser.add_argument("--format", choices=sorted(READERS), default="bundle")

    def handle(self, *args: Any, files: list[str], format: str, **options: Any) -> None:
        try:
            studies = READERS[format](files)
        except (BundleError, PublishedDataError) as exc:
            raise CommandError(str(exc)) from exc
        for study in studies:
            self.stdout.write(
                f"Imported {study.slug}: {study.sessions.count()} sessions, "
                f"{Response.objects.filter(session__study=study).count()} responses."
            )
