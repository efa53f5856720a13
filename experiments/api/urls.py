from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from experiments.api import views

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("sessions", views.StartSession.as_view(), name="api-sessions"),
    path("sessions/<int:session_id>", views.SessionDetail.as_view(), name="api-session"),
    path("sessions/<int:session_id>/trial", views.CurrentTrial.as_view(), name="api-trial"),
    path("sessions/<int:session_id>/responses", views.AnswerTrial.as_view(), name="api-responses"),
    path("sessions/<int:session_id>/events", views.RecordEvent.as_view(), name="api-events"),
    path("sessions/<int:session_id>/calibration", views.CalibrateSize.as_view(), name="api-calibration"),
    path("sessions/<int:session_id>/decline", views.DeclineSession.as_view(), name="api-decline"),
    path("sessions/<int:session_id>/complete", views.CompleteSession.as_view(), name="api-complete"),
]
