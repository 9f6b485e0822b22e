"""The client's address as the outermost trusted reverse proxy saw it.

Behind a reverse proxy every request's ``REMOTE_ADDR`` is the proxy, so login throttling
by address would lock out everyone at once. Each proxy appends the address it received
the request from to ``X-Forwarded-For``; with ``TRUSTED_PROXY_COUNT`` proxies in front of
Django the client is the entry that many places from the right. Entries further left came
from the client and can be forged, so they are never read.

django-axes can do this through django-ipware, which is not installed; this is the same
rule in a dozen lines, used as ``AXES_CLIENT_IP_CALLABLE``.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """Address of the client; ``REMOTE_ADDR`` when no proxy is trusted or the header is unusable.

    A header with fewer entries than trusted proxies means the request did not pass through
    all of them (or a proxy is misconfigured): its content is the client's word, so the
    direct peer is used instead.
    """
    remote = request.META.get("REMOTE_ADDR")
    n_proxies = int(getattr(settings, "TRUSTED_PROXY_COUNT", 0))
    if n_proxies <= 0:
        return remote
    header = request.META.get(getattr(settings, "CLIENT_IP_HEADER", "HTTP_X_FORWARDED_FOR"), "")
    hops = [hop.strip() for hop in header.split(",") if hop.strip()]
    if len(hops) < n_proxies:
        return remote
    candidate = hops[-n_proxies]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote
