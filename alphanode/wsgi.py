"""WSGI entry point: `gunicorn alphanode.wsgi`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alphanode.settings")
application = get_wsgi_application()
