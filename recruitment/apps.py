from django.apps import AppConfig


class RecruitmentConfig(AppConfig):
    name = "recruitment"

    def ready(self) -> None:
        # The recruiters' one registry is experiments': the participant workflow looks them up
        # there, and recruitment (recruitment.backends.backend_for) finds the same instances.
        from experiments.recruiters import register
        from recruitment.local.backend import LocalRecruiter
        from recruitment.mturk.backend import MTurkRecruiter
        from recruitment.prolific.backend import ProlificRecruiter

        # In this order the participant page tries their URL parameters.
        for recruiter in (LocalRecruiter(), MTurkRecruiter(), ProlificRecruiter()):
            register(recruiter)
