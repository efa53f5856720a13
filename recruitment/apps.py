from django.apps import AppConfig


class RecruitmentConfig(AppConfig):
    name = "recruitment"

    def ready(self) -> None:
        # Importing a backend registers it as a recruiter.
        from recruitment import ledger
        from recruitment.local import backend as local  # noqa: F401
        from recruitment.mturk import backend as mturk  # noqa: F401
        from recruitment.mturk.services import MTurkPayments
        from recruitment.prolific import backend as prolific  # noqa: F401
        from recruitment.prolific.services import ProlificPayments

        ledger.register("mturk", MTurkPayments())
        ledger.register("prolific", ProlificPayments())
