"""factory_boy factories for the models; helpers build the named personas."""

from __future__ import annotations

import hashlib

import factory
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from PIL import Image as PILImage

from turingtest.core import roles
from turingtest.images import encode_png
from turingtest.library.models import Condition, Image
from turingtest.studies.models import Assignment, Presentation, RaterProfile, Study, StudyItem


def png_bytes(colour: tuple[int, int, int] = (200, 150, 120), size: int = 32) -> bytes:
    """A flat image in the library's constant-size encoding (what ``normalize`` stores)."""
    return encode_png(PILImage.new("RGB", (size, size), colour))


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        # The role hooks only add groups and profiles: nothing on the user to save again.
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    password = factory.django.Password("correct horse battery")


class ResearcherFactory(UserFactory):
    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        roles.add_to_role(self, roles.RESEARCHERS)


class RaterFactory(UserFactory):
    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        roles.add_to_role(self, roles.RATERS)
        RaterProfile.objects.get_or_create(user=self)


class AdminFactory(UserFactory):
    is_staff = True
    is_superuser = True


class ConditionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Condition
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"C{n}")
    name = factory.LazyAttribute(lambda c: f"Condition {c.code}")
    map_index = factory.Sequence(lambda n: 100 + n)


class ImageFactory(factory.django.DjangoModelFactory):
    """A tiny PNG stored as-is (not normalized): for tests that don't look at files."""

    class Meta:
        model = Image

    kind = Image.Kind.REAL
    condition = factory.SubFactory(ConditionFactory)
    fitzpatrick = 3
    fitzpatrick_source = "label"
    width = 32
    height = 32
    sha256 = factory.Sequence(lambda n: hashlib.sha256(f"image{n}".encode()).hexdigest())
    file = factory.LazyFunction(lambda: ContentFile(png_bytes(), name="img.png"))


class StudyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Study

    title = factory.Sequence(lambda n: f"Study {n}")
    owner = factory.SubFactory(ResearcherFactory)


class StudyItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StudyItem

    study = factory.SubFactory(StudyFactory)
    image = factory.SubFactory(ImageFactory)


class AssignmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Assignment

    study = factory.SubFactory(StudyFactory)
    rater = factory.SubFactory(RaterFactory)
    seed = factory.Sequence(lambda n: n)


class PresentationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Presentation

    assignment = factory.SubFactory(AssignmentFactory)
    item = factory.SubFactory(StudyItemFactory, study=factory.SelfAttribute("..assignment.study"))
    position = factory.Sequence(lambda n: n)


# --- studies (helper S1) ----------------------------------------------------------------


def library_images(n_real: int, n_synthetic: int, *, conditions: int = 2) -> list[Image]:
    """Distinct tiny PNG images, conditions round-robin within each kind (so a pool of equal
    kinds can be matched within condition), real and synthetic alike on disk."""
    conds = [
        ConditionFactory(code=f"T{i}", name=f"Test condition {i}", map_index=200 + i)
        for i in range(conditions)
    ]
    images = []
    for i in range(n_real + n_synthetic):
        kind = Image.Kind.REAL if i < n_real else Image.Kind.SYNTHETIC
        within_kind = i if i < n_real else i - n_real
        colour = (100 + i % 100, 120, 90 + (i * 7) % 100)
        images.append(
            ImageFactory(
                kind=kind,
                condition=conds[within_kind % conditions],
                file=ContentFile(
                    png_bytes(colour), name=f"{hashlib.sha256(str(i).encode()).hexdigest()[:16]}.png"
                ),
            )
        )
    return images


def open_study(*, owner=None, n_real: int = 3, n_synthetic: int = 3, **config):
    """An open study over fresh library images (``config`` keys as in ``studies.protocol``)."""
    from turingtest.studies import services

    n_tut = config.get("n_tutorial", 0)
    library_images(n_real + n_tut - n_tut // 2, n_synthetic + n_tut // 2)
    cfg = {"n_real": n_real, "n_synthetic": n_synthetic, **config}
    study = services.study_create(owner=owner or ResearcherFactory(), title="Test study", config=cfg, seed=1)
    return services.study_open(study=study)


def rater_for(study, *, consent: bool = True, seed: int = 7):
    """A rater with an assignment (and consent) for ``study``."""
    from turingtest.studies import services

    rater = RaterFactory()
    assignment = services.assignment_create(study=study, rater=rater, seed=seed)
    if consent:
        services.assignment_consent(assignment=assignment)
        assignment.refresh_from_db()
    return rater, assignment
