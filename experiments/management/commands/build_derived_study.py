"""Build the study a study's responses feed: nameability's verify stage from a describe study."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from experiments.derivation import DerivationRefused, build_derived_study
from experiments.models import Study


class Command(BaseCommand):
    help = "Build the verify study of a describe study (linked to it, ready to open)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("source", help="The describe study's slug.")
        parser.add_argument("--slug", default="", help="The new study's slug (default: SOURCE-verify).")
        parser.add_argument("--open", action="store_true", help="Open it to participants at once.")

    def handle(self, *args, source: str, slug: str, open: bool, **options) -> None:
        study = Study.objects.filter(slug=source).first()
        if study is None:
            raise CommandError(f"There is no study {source!r}.")
        try:
            built = build_derived_study(study, slug=slug)
        except DerivationRefused as exc:
            raise CommandError(str(exc)) from exc
        if open:
            Study.objects.filter(pk=built.pk).update(status=Study.Status.OPEN)
        trials = built.trials.count()
        self.stdout.write(f"Built {built.slug} ({built.get_protocol_display()}): {trials} trials, linked to {source}.")
