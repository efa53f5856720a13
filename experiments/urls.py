from django.urls import path

from experiments import pages

urlpatterns = [
    path("s/<slug:slug>/", pages.participant_page, name="participant-page"),
]
