"""Login throttling: failures count per username *and* client address, read through the proxy.

tests/settings.py turns django-axes off for the rest of the suite; these tests turn it back on
and log in with POSTs, as a browser or API client would (``Client.login`` passes no request,
which django-axes' backend refuses).
"""

from __future__ import annotations

import pytest
from django.test import Client, RequestFactory, override_settings

from tests.factories import ResearcherFactory
from turingtest.core.client_ip import client_ip

PASSWORD = "correct horse battery"
LIMIT = 10  # the production default, AXES_FAILURE_LIMIT
axes_on = override_settings(AXES_ENABLED=True, AXES_FAILURE_LIMIT=LIMIT)
behind_one_proxy = override_settings(TRUSTED_PROXY_COUNT=1, CLIENT_IP_HEADER="HTTP_X_FORWARDED_FOR")


def _login(client: Client, username: str, password: str, **meta: str):
    return client.post("/accounts/login/", {"username": username, "password": password}, **meta)


def _token(client: Client, username: str, password: str, **meta: str):
    return client.post("/api/token/", {"username": username, "password": password}, **meta)


def _logged_in(response) -> bool:
    return response.status_code == 302 and response["Location"] == "/"


@pytest.fixture
def researcher():
    return ResearcherFactory(username="researcher")


@pytest.mark.django_db
@axes_on
def test_failed_logins_with_other_usernames_from_the_same_address_do_not_lock_out_a_user(researcher):
    attacker = Client(REMOTE_ADDR="192.0.2.10")
    for i in range(LIMIT + 2):
        assert _login(attacker, f"guess{i}", "wrong").status_code == 200
    assert _logged_in(_login(Client(REMOTE_ADDR="192.0.2.10"), "researcher", PASSWORD))


@pytest.mark.django_db
@axes_on
def test_repeated_failures_for_one_user_lock_out_that_user_from_that_address_only(researcher):
    attacker = Client(REMOTE_ADDR="192.0.2.10")
    for _ in range(LIMIT):
        _login(attacker, "researcher", "wrong")
    assert _login(attacker, "researcher", PASSWORD).status_code == 429
    assert _logged_in(_login(Client(REMOTE_ADDR="198.51.100.7"), "researcher", PASSWORD))


@pytest.mark.django_db
@axes_on
@behind_one_proxy
def test_behind_a_proxy_the_lockout_follows_the_forwarded_client_address_not_the_proxy(researcher):
    # Every request arrives from the proxy; the proxy appends the address it saw to X-Forwarded-For.
    # The attacker also sends a forged X-Forwarded-For naming the victim's address: it is ignored.
    attacker = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.7, 203.0.113.5")
    for _ in range(LIMIT):
        _login(attacker, "researcher", "wrong")
    assert _login(attacker, "researcher", PASSWORD).status_code == 429
    victim = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert _logged_in(_login(victim, "researcher", PASSWORD))


@pytest.mark.django_db
@axes_on
def test_the_token_endpoint_counts_failures_per_username_and_address_too(researcher):
    attacker = Client(REMOTE_ADDR="192.0.2.10")
    for i in range(LIMIT + 2):
        assert _token(attacker, f"guess{i}", "wrong").status_code == 400
    ok = _token(Client(REMOTE_ADDR="192.0.2.10"), "researcher", PASSWORD)
    assert ok.status_code == 200 and ok.json()["token"]
    for _ in range(LIMIT):
        _token(attacker, "researcher", "wrong")
    locked = _token(attacker, "researcher", PASSWORD)
    assert locked.status_code != 200 and "token" not in locked.content.decode()
    assert _token(Client(REMOTE_ADDR="198.51.100.7"), "researcher", PASSWORD).status_code == 200


@pytest.mark.parametrize(
    ("n_proxies", "forwarded", "expected"),
    [
        (0, "198.51.100.7", "10.0.0.2"),  # no proxy configured: the header is the client's to forge
        (1, "198.51.100.7", "198.51.100.7"),
        (1, "6.6.6.6, 198.51.100.7", "198.51.100.7"),  # a forged left part is skipped
        (2, "6.6.6.6, 198.51.100.7, 10.0.0.1", "198.51.100.7"),
        (2, "198.51.100.7", "10.0.0.2"),  # fewer hops than proxies: it bypassed one, trust nothing
        (1, "not-an-address", "10.0.0.2"),
        (1, "", "10.0.0.2"),
        (1, " 2001:db8::1 ", "2001:db8::1"),
    ],
)
def test_the_client_address_is_the_one_the_outermost_trusted_proxy_saw(n_proxies, forwarded, expected):
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded)
    with override_settings(TRUSTED_PROXY_COUNT=n_proxies, CLIENT_IP_HEADER="HTTP_X_FORWARDED_FOR"):
        assert client_ip(request) == expected


def test_a_single_value_header_such_as_x_real_ip_works_with_one_proxy():
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_REAL_IP="203.0.113.5")
    with override_settings(TRUSTED_PROXY_COUNT=1, CLIENT_IP_HEADER="HTTP_X_REAL_IP"):
        assert client_ip(request) == "203.0.113.5"
