"""Who is asking: the client's address behind trusted proxies, the log of staff logins, and
the page a throttled login gets (docs/operations.md).

Failed logins are counted twice:
- by django-axes per account and address together (settings.py AXES_LOCKOUT_PARAMETERS):
  after LOGIN_FAILURE_LIMIT failures, that account cannot log in from that address for
  LOGIN_LOCKOUT_MINUTES. Someone guessing from elsewhere never locks an editor out of their
  own address.
- per address alone, here, at a higher limit (LOGIN_ADDRESS_FAILURE_LIMIT): an address trying
  many accounts is refused any login for LOGIN_LOCKOUT_MINUTES after its last failures.
Every failure is logged, so a guess spread over many addresses shows in the logs.
"""

import ipaddress
import logging

from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import cache
from django.dispatch import receiver
from django.urls import reverse

log = logging.getLogger("alphanode.auth")


def client_ip(request) -> str:
    """The client's address: the one the nearest of TRUSTED_PROXY_COUNT proxies saw (each
    appends to X-Forwarded-For), else the connection's own."""
    count = settings.TRUSTED_PROXY_COUNT
    if count:
        forwarded = [
            address.strip()
            for address in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if address.strip()
        ]
        if len(forwarded) >= count and is_address(forwarded[-count]):
            return forwarded[-count]
    return request.META.get("REMOTE_ADDR", "")


def is_address(text: str) -> bool:
    """Whether `text` is an IP address (what axes stores; anything else was not a proxy's)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def where(request) -> dict:
    return {"ip": client_ip(request) if request else "", "path": request.path if request else ""}


@receiver(user_logged_in)
def logged_in(sender, request, user, **kwargs):
    log.info("login: %s (user %s)", user.get_username(), user.pk,
             extra={"username": user.get_username(), "user_id": user.pk, **where(request)})


@receiver(user_login_failed)
def login_failed(sender, credentials, request=None, **kwargs):
    # Django passes the credentials with the password replaced by stars; only the name is kept.
    username = str(credentials.get("username", ""))[:150]
    log.warning("login failed: %r from %s", username, where(request)["ip"],
                extra={"username": username, **where(request)})
    if request is not None:
        count_address_failure(client_ip(request))


def address_key(address: str) -> str:
    return f"login-failures:{address}"


def count_address_failure(address: str) -> None:
    """Count a failed login from `address`, for LOGIN_LOCKOUT_MINUTES after the last one."""
    key, seconds = address_key(address), settings.LOGIN_LOCKOUT_MINUTES * 60
    try:
        cache.add(key, 0, timeout=seconds)
        cache.incr(key)
        cache.touch(key, timeout=seconds)
    except Exception as error:  # the cache away: axes' per-account count still holds
        log.warning("could not count a failed login from %s: %s", address, error)


def address_locked(address: str) -> bool:
    try:
        return (cache.get(address_key(address)) or 0) >= settings.LOGIN_ADDRESS_FAILURE_LIMIT
    except Exception:  # the cache away: see count_address_failure
        return False


class AddressThrottleMiddleware:
    """Refuse login attempts from an address with LOGIN_ADDRESS_FAILURE_LIMIT recent failures,
    whatever the account (429, templates/locked_out.html)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if (request.method == "POST" and request.path == reverse("admin:login")
                and address_locked(client_ip(request))):
            from alphanode.health import error_page

            log.warning("login refused: %s has %s+ recent failures", client_ip(request),
                        settings.LOGIN_ADDRESS_FAILURE_LIMIT, extra=where(request))
            return error_page(request, "locked_out.html", 429, per_address=True,
                              failure_limit=settings.LOGIN_ADDRESS_FAILURE_LIMIT,
                              minutes=settings.LOGIN_LOCKOUT_MINUTES)
        return self.get_response(request)


@receiver(user_locked_out)
def locked_out(sender, request, username, ip_address, **kwargs):
    log.warning("login locked: %r from %s for %s minutes after %s failures", username,
                ip_address, settings.LOGIN_LOCKOUT_MINUTES, settings.LOGIN_FAILURE_LIMIT,
                extra={"username": username, **where(request)})


def csrf_failure(request, reason=""):
    """CSRF_FAILURE_VIEW: the site's 403 page, saying what to do (not Django's, whose inline
    style the Content Security Policy blocks)."""
    from alphanode.health import error_page

    return error_page(request, "403.html", 403, message=(
        "This form was sent without a valid security token (it may have expired, or cookies "
        "are blocked): reload the page and send it again."))
