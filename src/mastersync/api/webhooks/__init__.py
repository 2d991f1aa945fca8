"""The webhook receiver: POST /hooks/SYSTEM[/DOMAIN] for every system of type webhook."""

from mastersync.api.webhooks.routes import webhook_app, webhook_router, webhook_server

__all__ = ["webhook_app", "webhook_router", "webhook_server"]
