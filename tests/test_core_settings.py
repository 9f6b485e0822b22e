"""Settings read from the environment (each test starts a fresh process: settings load once)."""

from __future__ import annotations

from tests.manage_support import run_manage

PRINT_MAX_PIXELS = "from turingtest import images; print(images.max_pixels())"


def test_image_max_pixels_is_read_from_the_environment():
    result = run_manage(
        ["shell", "--no-imports", "-c", PRINT_MAX_PIXELS],
        {"DJANGO_DEBUG": "1", "IMAGE_MAX_PIXELS": "1234567"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1234567"


def test_image_max_pixels_defaults_to_64_million_and_refuses_a_non_integer():
    default = run_manage(["shell", "--no-imports", "-c", PRINT_MAX_PIXELS], {"DJANGO_DEBUG": "1"})
    assert default.stdout.strip() == "64000000", default.stderr
    bad = run_manage(
        ["shell", "--no-imports", "-c", PRINT_MAX_PIXELS], {"DJANGO_DEBUG": "1", "IMAGE_MAX_PIXELS": "lots"}
    )
    assert bad.returncode != 0 and "IMAGE_MAX_PIXELS must be an integer" in bad.stderr


def test_the_trusted_proxy_count_follows_behind_proxy_unless_set_and_refuses_a_negative_value():
    show = "from django.conf import settings; print(settings.TRUSTED_PROXY_COUNT, settings.CLIENT_IP_HEADER)"
    assert run_manage(["shell", "--no-imports", "-c", show], {"DJANGO_DEBUG": "1"}).stdout.split() == [
        "0",
        "HTTP_X_FORWARDED_FOR",
    ]
    behind = run_manage(
        ["shell", "--no-imports", "-c", show], {"DJANGO_DEBUG": "1", "DJANGO_BEHIND_PROXY": "1"}
    )
    assert behind.stdout.split() == ["1", "HTTP_X_FORWARDED_FOR"]
    two = run_manage(
        ["shell", "--no-imports", "-c", show],
        {"DJANGO_DEBUG": "1", "DJANGO_TRUSTED_PROXY_COUNT": "2", "DJANGO_CLIENT_IP_HEADER": "X-Real-IP"},
    )
    assert two.stdout.split() == ["2", "HTTP_X_REAL_IP"]
    negative = run_manage(
        ["shell", "--no-imports", "-c", show], {"DJANGO_DEBUG": "1", "DJANGO_TRUSTED_PROXY_COUNT": "-1"}
    )
    assert negative.returncode != 0 and "DJANGO_TRUSTED_PROXY_COUNT must be 0 or more" in negative.stderr
