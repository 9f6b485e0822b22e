"""audit_leaks: fetches every item as a rater would, and flags what separates real from synthetic."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image as PILImage

from tests.factories import open_study
from turingtest.studies import audit, services
from turingtest.studies.models import Assignment, Judgment, Study

pytestmark = pytest.mark.django_db


def test_auc_matches_the_mann_whitney_definition():
    y = np.array([True, True, False, False])
    assert audit.auc_score(y, np.array([0.9, 0.4, 0.5, 0.1])) == pytest.approx(0.75)
    assert audit.auc_score(y, np.array([1, 1, 1, 1])) == pytest.approx(0.5)


def test_a_fair_study_passes_and_leaves_no_trace(capsys):
    study = open_study(n_real=8, n_synthetic=8)
    call_command("audit_leaks", str(study.pk))
    out = capsys.readouterr().out
    assert "16 items (8 synthetic)" in out
    assert "header:content-type" in out and "url_length" in out and "ttfb_ms" in out
    assert "classifier (non-content features)" in out
    assert Assignment.objects.count() == 0 and Judgment.objects.count() == 0
    assert services.study_verify_frozen(study=Study.objects.get(pk=study.pk))


def test_a_draft_study_can_be_audited_and_stays_a_draft(capsys):
    study = open_study(n_real=8, n_synthetic=8)
    Study.objects.filter(pk=study.pk).update(status=Study.Status.DRAFT)
    call_command("audit_leaks", str(study.pk))
    study.refresh_from_db()
    assert study.status == Study.Status.DRAFT


def test_a_format_difference_between_real_and_synthetic_is_flagged_and_fails():
    study = open_study(n_real=8, n_synthetic=8)
    for item in study.items.select_related("image").filter(image__kind="synthetic"):
        buf = io.BytesIO()
        PILImage.new("RGB", (32, 32), (200, 100, 100)).save(buf, format="JPEG")
        item.image.file.save("x.jpg", ContentFile(buf.getvalue()))
    with pytest.raises(CommandError, match="header:content-type"):
        call_command("audit_leaks", str(study.pk))


def test_the_analysis_flags_byte_size_as_a_leak_and_sharpness_as_content():
    rows = [
        {
            "kind": "synthetic" if i % 2 else "real",
            "byte_size": 1000 + 50 * (i % 2) + i,
            "sharpness": 10.0 + 40 * (i % 2) + i,
            "url_length": 37,
        }
        for i in range(30)
    ]
    results, clf, _ = audit.audit_analyse(rows)
    by_name = {r.name: r for r in results}
    assert by_name["byte_size"].flagged and not by_name["byte_size"].content_driven
    assert by_name["sharpness"].flagged and by_name["sharpness"].content_driven
    assert by_name["url_length"].auc == 0.5 and not by_name["url_length"].flagged
    assert clf.flagged  # the classifier over non-content features now sees byte size


def test_an_unknown_study_exits_non_zero():
    with pytest.raises(CommandError):
        call_command("audit_leaks", "999999")
