"""A synthetic study of N raters x M images, every rater judging every image, in PostgreSQL.

Shared by ``benchmarks/report.py`` and ``benchmarks/export.py`` so both measure the same
data (default 200 raters x 5,000 images = 1,000,000 judgments).

Small tables (users, profiles, images, items, assignments) go through the ORM's
``bulk_create``; the two big ones (presentations, judgments) are filled by one
``INSERT … SELECT`` each, computed inside PostgreSQL, which takes seconds rather than
minutes. Answers are random but not chance: each rater has a skill, so the report has
something to find.

Usage::

    from benchmarks.support.synthetic_study import bench_database, setup_django, make_synthetic_study
    setup_django()
    with bench_database():
        study_id = make_synthetic_study(n_raters=200, n_images=5000)
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_BENCH_DB = "postgres://postgres@127.0.0.1:5432/dermgan_bench"


def setup_django() -> None:
    """Django on PostgreSQL: ``DATABASE_URL`` if it is PostgreSQL, else ``BENCH_DATABASE_URL``
    (default ``postgres://postgres@127.0.0.1:5432/dermgan_bench``; only ``test_<name>`` is touched)."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_DEBUG", "1")
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", DEFAULT_BENCH_DB)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()


@contextlib.contextmanager
def bench_database() -> Iterator[None]:
    """A fresh, migrated ``test_<name>`` database, dropped afterwards (Django's test machinery)."""
    from django.db import connection

    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        yield
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def make_synthetic_study(*, n_raters: int = 200, n_images: int = 5000, seed: int = 0) -> int:
    """Create the study and its judgments; returns the study's id."""
    import random

    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from turingtest.library.models import Condition, Image
    from turingtest.studies.models import Assignment, RaterProfile, Study, StudyItem

    t0 = time.perf_counter()
    rng = random.Random(seed)
    User = get_user_model()
    codes = ["MEL", "BCC", "SCC", "AK", "SEK", "NEV", "ECZ", "PSO"]
    with transaction.atomic():
        conditions = []
        for idx, code in enumerate(codes):
            cond, _ = Condition.objects.get_or_create(
                code=code, defaults={"name": f"Condition {code}", "map_index": 500 + idx}
            )
            conditions.append(cond)
        owner = User.objects.create(username=f"bench-owner-{seed}")
        study = Study.objects.create(
            title=f"Synthetic benchmark study {n_raters}x{n_images}",
            owner=owner,
            status=Study.Status.OPEN,
            config={"benchmark": True, "n_raters": n_raters, "n_images": n_images},
            config_sha256=hashlib.sha256(f"bench{seed}".encode()).hexdigest(),
            opened_at=timezone.now(),
            seed=seed,
        )
        images = []
        for i in range(n_images):
            synthetic = i % 2 == 1
            images.append(
                Image(
                    kind="synthetic" if synthetic else "real",
                    condition=conditions[i % len(conditions)],
                    fitzpatrick=1 + i % 6,
                    lesion_area_fraction=round(rng.uniform(0.01, 0.6), 4),
                    lesion_bbox=[0.1, 0.2, round(rng.uniform(0.3, 0.9), 3), 0.8],
                    file=f"bench/{seed}-{i}.png",
                    sha256=hashlib.sha256(f"bench-{seed}-{i}".encode()).hexdigest(),
                    width=256,
                    height=256,
                    provenance={"batch": 1, "index": i, "seed": 10_000 + i, "checkpoint_sha256": "ab" * 32}
                    if synthetic
                    else {"source": "benchmark"},
                )
            )
        Image.objects.bulk_create(images, batch_size=2000)
        StudyItem.objects.bulk_create([StudyItem(study=study, image=img) for img in images], batch_size=2000)
        users = User.objects.bulk_create(
            [User(username=f"bench-rater-{seed}-{r}", email=f"r{r}@example.org") for r in range(n_raters)]
        )
        roles = list(RaterProfile.Role.values)
        RaterProfile.objects.bulk_create(
            [
                RaterProfile(user=u, role=roles[r % len(roles)], years_experience=r % 30)
                for r, u in enumerate(users)
            ]
        )
        Assignment.objects.bulk_create(
            [Assignment(study=study, rater=u, seed=r, started_at=timezone.now()) for r, u in enumerate(users)]
        )
    _log(f"[synthetic study] small tables in {time.perf_counter() - t0:.1f}s")
    t1 = time.perf_counter()
    with connection.cursor() as cur, transaction.atomic():
        cur.execute("SELECT setseed(%s)", [((seed % 1000) / 1000.0)])
        cur.execute(
            _insert_sql(
                "studies_presentation",
                {
                    "assignment_id": "a.id",
                    "item_id": "i.id",
                    "position": "row_number() OVER (PARTITION BY a.id ORDER BY md5(a.id::text || '-' || i.id::text)) - 1",
                    "is_tutorial": "false",
                    "repeat_of_id": "NULL",
                    "public_token": "md5(a.id::text || '/' || i.id::text || random()::text)",
                    "shown_at": "now() - interval '1 hour'",
                    "answered_at": "now()",
                },
                "FROM studies_assignment a CROSS JOIN studies_studyitem i WHERE a.study_id = %s AND i.study_id = %s",
            ),
            [study.pk, study.pk],
        )
        # Rater skill between 0.45 and 0.75: P(correct) per rater, stable across its rows.
        cur.execute(
            _insert_sql(
                "studies_judgment",
                {
                    "presentation_id": "p.id",
                    "client_key": "md5('bench' || p.id::text)::uuid",
                    "says_synthetic": "(img.kind = 'synthetic') = (random() < 0.45 + 0.3 * mod(a.seed * 7919, 100) / 100.0)",
                    "confidence": "1 + floor(random() * 5)::int",
                    "diagnosis_id": "CASE WHEN random() < 0.6 THEN img.condition_id END",
                    "diagnosis_unsure": "random() < 0.05",
                    "comment": "CASE WHEN random() < 0.01 THEN 'odd texture, \"too smooth\"' ELSE '' END",
                    "response_ms": "500 + floor(random() * 6000)::int",
                    "answered_at": "now()",
                    "revision": "1",
                    "edited_at": "NULL",
                },
                "FROM studies_presentation p JOIN studies_assignment a ON a.id = p.assignment_id "
                "JOIN studies_studyitem si ON si.id = p.item_id JOIN library_image img ON img.id = si.image_id "
                "WHERE a.study_id = %s",
            ),
            [study.pk],
        )
        cur.execute("ANALYZE studies_presentation; ANALYZE studies_judgment; ANALYZE library_image")
    _log(
        f"[synthetic study] {n_raters * n_images} presentations + judgments in {time.perf_counter() - t1:.1f}s"
    )
    return study.pk


def _insert_sql(table: str, known: dict[str, str], tail: str) -> str:
    """``INSERT INTO table (…) SELECT … tail`` covering every concrete column.

    Columns this helper does not know (added by later migrations) get their model default
    as a literal, so the benchmark keeps working as the schema grows.
    """
    from django.apps import apps
    from django.db.models import NOT_PROVIDED

    model = next(m for m in apps.get_models() if m._meta.db_table == table)
    columns, exprs = [], []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        col = field.column
        if col in known:
            expr = known[col]
        elif field.has_default() and field.default is not NOT_PROVIDED:
            value = field.get_default()
            expr = "NULL" if value is None else _literal(value)
        elif field.null:
            expr = "NULL"
        else:
            raise RuntimeError(f"benchmark helper does not know how to fill {table}.{col}")
        columns.append(f'"{col}"')
        exprs.append(expr)
    return f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(exprs)} {tail}"


def _literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"
