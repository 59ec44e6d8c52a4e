import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.development")

# Set up Django before anything imports models.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ChannelNameRouter, ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from glossary.consumers import BacklogGuard  # noqa: E402
from glossary.proxies import TrustedProxiesMiddleware  # noqa: E402
from glossary.routing import channel_routes, websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": TrustedProxiesMiddleware(django_asgi_app),
        "websocket": TrustedProxiesMiddleware(
            BacklogGuard(
                AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
            )
        ),
        # `manage.py runworker snippet-runs` (RUNNER_MODE=workers)
        "channel": ChannelNameRouter(channel_routes),
    }
)
