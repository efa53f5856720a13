from django.apps import AppConfig


class RecruitmentConfig(AppConfig):
    name = "recruitment"

    def ready(self) -> None:
        # Importing a backend registers it.
        from recruitment.local import backend  # noqa: F401
