from django.http import HttpResponse
from django.urls import path

from config.urls import urlpatterns as site_urlpatterns


def bare(request):
    """The cheapest response Django serves: the yardstick the real pages are measured against."""
    return HttpResponse("ok")


urlpatterns = [path("bare/", bare, name="bare"), *site_urlpatterns]
