"""create_study and invite_raters: what a researcher runs from the shell."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from tests.factories import AdminFactory, ResearcherFactory, library_images
from turingtest.studies.models import Invitation, Study

pytestmark = pytest.mark.django_db


def run(*args: str) -> list[str]:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue().strip().splitlines()


def test_create_study_draws_a_balanced_pool_and_prints_its_id_last():
    library_images(10, 10)
    owner = ResearcherFactory()
    lines = run(
        "create_study", "--title", "Pilot", "--real", "4", "--synthetic", "4", "--items-per-rater", "6"
    )
    assert lines[-1].startswith("study ")
    study = Study.objects.get(pk=int(lines[-1].split()[1]))
    assert study.owner == owner and study.status == Study.Status.DRAFT
    assert study.items.filter(image__kind="real").count() == 4
    assert study.items.filter(image__kind="synthetic").count() == 4
    assert study.config["items_per_rater"] == 6


def test_create_study_open_freezes_it_and_takes_an_owner():
    library_images(6, 6)
    AdminFactory(username="boss")
    lines = run(
        "create_study",
        "--title",
        "T",
        "--real",
        "3",
        "--synthetic",
        "3",
        "--tutorial",
        "2",
        "--open",
        "--owner",
        "boss",
    )
    study = Study.objects.get(pk=int(lines[-1].split()[1]))
    assert study.status == Study.Status.OPEN and len(study.config_sha256) == 64
    assert study.owner.username == "boss"
    assert study.items.filter(is_tutorial=True).count() == 2


@pytest.mark.parametrize(
    "args,message",
    [
        (["--real", "50", "--synthetic", "1"], "images match the pool filters"),
        (["--real", "1", "--synthetic", "1", "--owner", "nobody"], "no user"),
        (["--real", "1", "--synthetic", "1", "--repeat-fraction", "0.9"], "repeat_fraction"),
    ],
)
def test_create_study_fails_clearly_and_creates_nothing(args, message):
    library_images(3, 3)
    ResearcherFactory()
    with pytest.raises(CommandError, match=message):
        run("create_study", "--title", "T", *args)
    assert not Study.objects.exists()


def test_invite_raters_prints_one_working_absolute_url_per_line(settings):
    settings.SITE_URL = "https://derm.example.org"
    library_images(2, 2)
    ResearcherFactory()
    study_id = run("create_study", "--title", "T", "--real", "2", "--synthetic", "2", "--open")[-1].split()[1]
    urls = run("invite_raters", study_id, "--count", "3")
    assert len(urls) == 3 and len(set(urls)) == 3
    assert all(u.startswith("https://derm.example.org/invite/") and u.endswith("/") for u in urls)
    assert Invitation.objects.count() == 3
    path = urls[0].removeprefix("https://derm.example.org")
    assert Client().get(path).status_code == 200


def test_invite_raters_for_an_unknown_study_exits_non_zero():
    with pytest.raises(CommandError, match="no study 424242"):
        run("invite_raters", "424242", "--count", "1")
