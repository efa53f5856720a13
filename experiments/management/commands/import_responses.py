from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from experiments.export.reimport import BundleError, import_bundle


class Command(BaseCommand):
    help = "Read a dataset bundle (from export_dataset or the admin) back into new studies."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("bundle", help="The bundle's zip file.")

    def handle(self, *args: Any, bundle: str, **options: Any) -> None:
        try:
            studies = import_bundle(bundle)
        except BundleError as exc:
            raise CommandError(str(exc)) from exc
        for study in studies:
            self.stdout.write(f"Imported {study.slug}: {study.sessions.count()} sessions.")
