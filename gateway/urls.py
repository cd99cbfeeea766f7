"""URLs served by Django. The hot ``/v1`` endpoints are served in front of Django by
``gateway.asgi`` (see README, "Performance"); Django serves admin and everything else."""

from django.contrib import admin
from django.urls import path

urlpatterns = [
    path("admin/", admin.site.urls),
]
