from django.conf import settings
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path, re_path

from psyplatform.login_lockout import LockingAdminAuthenticationForm
from psyplatform.media import serve_media

# Locks the admin's login after repeated failures.
admin.site.login_form = LockingAdminAuthenticationForm

urlpatterns: list[URLPattern | URLResolver] = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("experiments.api.urls")),
    path("", include("experiments.urls")),
]

if not settings.STORAGE_URL:
    # The embedded default serves stored stimuli itself; with S3 the store does.
    urlpatterns += [
        re_path(r"^media/(?P<path>.*)$", serve_media),
    ]

handler400 = "psyplatform.error_views.bad_request"
handler404 = "psyplatform.error_views.not_found"
handler500 = "psyplatform.error_views.server_error"
