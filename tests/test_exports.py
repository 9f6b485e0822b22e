"""Streaming exports: columns, values, pseudonymity, constant memory, atomic files, the package."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import tracemalloc
import uuid
import zipfile
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from tests.research_study import AWKWARD, add_bulk_judgments, build_small_study
from turingtest import exports, reports
from turingtest.exports import package, pgcopy, writers
from turingtest.studies.models import Judgment, Presentation

pytestmark = pytest.mark.django_db


def _csv_rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode())))


def _export(study, **kw) -> bytes:
    return b"".join(exports.iter_export(study, **kw))


@pytest.fixture
def small():
    return build_small_study()


def test_the_csv_header_the_data_dictionary_and_the_column_list_agree():
    for identities in (False, True):
        names = [c.name for c in exports.columns(identities=identities)]
        assert exports.header(identities=identities) == names
        dictionary = list(csv.DictReader(io.StringIO(exports.data_dictionary_csv(identities=identities))))
        assert [r["column"] for r in dictionary] == names
        assert all(r["description"] and r["type"] for r in dictionary)
        markdown = exports.data_dictionary_markdown(identities=identities)
        assert all(f"| `{name}` |" in markdown for name in names)
    assert "rater_username" not in exports.header()
    assert len(set(exports.header(identities=True))) == len(exports.header(identities=True))


def test_the_csv_has_one_row_per_judgment_with_the_dictionary_columns_in_order(small):
    data = _export(small.study, fmt="csv")
    reader = csv.reader(io.StringIO(data.decode()))
    assert next(reader) == exports.header()
    rows = _csv_rows(data)
    assert len(rows) == small.n_judgments == Judgment.objects.count()
    assert len({r["judgment_id"] for r in rows}) == len(rows)


def test_each_row_carries_ground_truth_provenance_geometry_and_the_answer(small):
    rows = {int(r["judgment_id"]): r for r in _csv_rows(_export(small.study, fmt="csv"))}
    j = Judgment.objects.select_related(
        "presentation__item__image__condition", "presentation__assignment__rater__rater_profile", "diagnosis"
    ).get(comment=AWKWARD)
    row = rows[j.pk]
    image = j.presentation.item.image
    profile = j.presentation.assignment.rater.rater_profile
    assert row["comment"] == AWKWARD  # commas, quotes, non-ASCII and a newline survive
    assert row["rater_pseudonym"] == profile.pseudonym
    assert row["rater_role"] == profile.role
    assert row["rater_years_experience"] == str(profile.years_experience)
    assert row["image_public_token"] == image.public_token
    assert row["truth_kind"] == image.kind
    assert row["truth_condition"] == image.condition.code
    assert row["fitzpatrick"] == str(image.fitzpatrick)
    assert float(row["lesion_area_fraction"]) == pytest.approx(image.lesion_area_fraction)
    assert [float(row[f"lesion_bbox_{k}"]) for k in ("x0", "y0", "x1", "y1")] == pytest.approx(
        image.lesion_bbox
    )
    assert row["presentation_position"] == str(j.presentation.position)
    assert row["says_synthetic"] == ("true" if j.says_synthetic else "false")
    assert row["is_correct"] == ("true" if j.says_synthetic == (image.kind == "synthetic") else "false")
    assert row["response_ms"] == str(j.response_ms)
    assert row["answered_at"].endswith("Z") and row["answered_at"].startswith(
        j.answered_at.strftime("%Y-%m-%dT%H:%M:%S")
    )
    synthetic = [r for r in rows.values() if r["truth_kind"] == "synthetic"]
    real = [r for r in rows.values() if r["truth_kind"] == "real"]
    assert synthetic and real
    assert all(r["synthetic_seed"].isdigit() and r["synthetic_batch"] == "3" for r in synthetic)
    assert all(len(r["synthetic_checkpoint_sha256"]) == 64 for r in synthetic)
    assert all(r["synthetic_seed"] == "" and r["synthetic_checkpoint_sha256"] == "" for r in real)


def test_repeats_point_at_their_first_showing(small):
    rows = _csv_rows(_export(small.study, fmt="csv"))
    repeats = [r for r in rows if r["is_repeat"] == "true"]
    assert len(repeats) == len(small.raters)
    for r in repeats:
        first = next(
            x
            for x in rows
            if x["assignment_id"] == r["assignment_id"]
            and x["presentation_position"] == r["repeat_of_position"]
        )
        assert first["image_public_token"] == r["image_public_token"] and first["is_repeat"] == "false"
    assert all(r["repeat_of_position"] == "" for r in rows if r["is_repeat"] == "false")


def test_tutorial_answers_are_never_exported(small):
    tutorial = Presentation.objects.get(assignment__study=small.study, is_tutorial=True)
    Judgment.objects.create(presentation=tutorial, client_key=uuid.uuid4(), says_synthetic=True)
    rows = _csv_rows(_export(small.study, fmt="csv"))
    assert len(rows) == small.n_judgments
    assert tutorial.item.image.public_token not in {r["image_public_token"] for r in rows}


def test_raters_are_pseudonymous_unless_identities_are_asked_for_and_that_is_audited(small, caplog):
    plain = _export(small.study, fmt="csv").decode()
    assert all(r.username not in plain and r.email not in plain for r in small.raters)
    with caplog.at_level(logging.WARNING, logger="turingtest.audit"):
        named = _export(small.study, fmt="csv", identities=True, requested_by="boss")
    rows = _csv_rows(named)
    assert {r["rater_username"] for r in rows} == {u.username for u in small.raters}
    assert next(iter(csv.reader(io.StringIO(named.decode())))) == exports.header(identities=True)
    assert any(
        "boss" in rec.getMessage() and str(small.study.pk) in rec.getMessage() for rec in caplog.records
    )


def test_jsonl_has_the_same_rows_and_keys_with_typed_values(small):
    rows = _csv_rows(_export(small.study, fmt="csv"))
    objs = [json.loads(line) for line in _export(small.study, fmt="jsonl").decode().splitlines()]
    assert len(objs) == len(rows)
    assert all(list(o) == exports.header() for o in objs)
    kinds = {c.name: c.kind for c in exports.COLUMNS}
    for obj, row in zip(objs, rows):
        assert isinstance(obj["says_synthetic"], bool) and isinstance(obj["judgment_id"], int)
        for name, value in obj.items():
            as_text = value if kinds[name] == "datetime" else writers._csv_value(kinds[name], value)
            assert (as_text or "") == row[name], name


def test_an_unknown_format_is_a_clear_error(small):
    with pytest.raises(ValueError, match="unknown export format 'xlsx'"):
        exports.iter_export(small.study, fmt="xlsx")


@pytest.mark.postgres
def test_on_postgresql_copy_and_the_iterator_writer_give_identical_bytes(small):
    add_bulk_judgments(small.study, 300)
    via_copy = b"".join(exports.iter_copy(exports.copy_sql(small.study), chunk_bytes=4096))
    via_python = b"".join(exports.iter_csv_python(small.study))
    assert via_copy == via_python
    assert exports.uses_copy()
    named = b"".join(exports.iter_copy(exports.copy_sql(small.study, identities=True)))
    assert named == b"".join(exports.iter_csv_python(small.study, identities=True))


@pytest.mark.postgres
def test_closing_a_copy_export_early_stops_it_and_leaves_the_connection_usable(small):
    add_bulk_judgments(small.study, 3000)
    stream = exports.iter_copy(exports.copy_sql(small.study), chunk_bytes=1024)
    assert next(stream)
    stream.close()
    # Inside the test's transaction the rest is drained, so the transaction stays usable.
    assert Judgment.objects.filter(presentation__assignment__study=small.study).count() > 3000


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_closing_a_copy_export_early_outside_a_transaction_cancels_it_cleanly():
    small = build_small_study()
    add_bulk_judgments(small.study, 3000)
    stream = exports.iter_copy(exports.copy_sql(small.study), chunk_bytes=1024)
    assert next(stream)
    stream.close()
    assert Judgment.objects.filter(presentation__assignment__study=small.study).count() > 3000
    assert len(_csv_rows(_export(small.study, fmt="csv"))) > 3000


def _peak_while_streaming(study) -> tuple[int, int]:
    tracemalloc.start()
    n = 0
    for chunk in exports.iter_export(study, fmt="csv"):
        n += len(chunk)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return n, peak


def test_export_memory_does_not_grow_with_the_number_of_judgments(small, monkeypatch):
    """Constant memory: four times the rows, about the same peak heap while streaming."""
    monkeypatch.setattr(writers, "ITERATOR_CHUNK_ROWS", 200)
    monkeypatch.setattr(pgcopy, "COPY_CHUNK_BYTES", 32 * 1024)
    add_bulk_judgments(small.study, 2000)
    n_small, peak_small = _peak_while_streaming(small.study)
    add_bulk_judgments(small.study, 6000)
    n_big, peak_big = _peak_while_streaming(small.study)
    assert n_big > 3.5 * n_small
    assert peak_big < 1.5 * peak_small + 64 * 1024, (peak_small, peak_big)
    assert peak_big < n_big / 2


def test_write_atomic_leaves_the_old_file_and_no_partial_file_on_failure(tmp_path: Path):
    target = tmp_path / "out.csv"
    target.write_bytes(b"previous")

    def failing():
        yield b"a,b\n"
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError):
        exports.write_atomic(target, failing())
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]
    assert exports.write_atomic(target, [b"x,y\n", b"1,2\n"]) == 8
    assert target.read_bytes() == b"x,y\n1,2\n"


def test_the_study_package_holds_csv_report_config_with_hash_dictionary_and_readme(small):
    buf = io.BytesIO()
    exports.write_package(small.study, buf)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as zf:
        names = set(zf.namelist())
        assert {
            "README.txt",
            "judgments.csv",
            "report.json",
            "study_config.json",
            "study_config.json.sha256",
            "data_dictionary.csv",
            "data_dictionary.md",
        } <= names
        assert zf.read("judgments.csv") == _export(small.study, fmt="csv")
        report = json.loads(zf.read("report.json"))
        expected = json.loads(json.dumps(exports.json_safe(reports.build(small.study).to_dict())))
        for r in (report, expected):
            r["study"].pop("generated_at")
        assert report == expected
        config_bytes = zf.read("study_config.json")
        config = json.loads(config_bytes)
        assert config["config"] == small.study.config
        assert config["config_sha256"] == small.study.config_sha256
        assert (
            zf.read("study_config.json.sha256").decode().split()[0]
            == hashlib.sha256(config_bytes).hexdigest()
        )
        dictionary = list(csv.DictReader(io.StringIO(zf.read("data_dictionary.csv").decode())))
        assert [r["column"] for r in dictionary] == exports.header()
        readme = zf.read("README.txt").decode()
        assert "pseudonym" in readme and "IDENTITIES" not in readme
        # The headline leads the package: its sentence in the README, its numbers in headline.csv.
        assert f"Headline: {report['headline']['sentence']}" in readme
        rows = {r["statistic"]: r for r in csv.DictReader(io.StringIO(zf.read("headline.csv").decode()))}
        assert list(rows)[:4] == ["balanced_accuracy", "sensitivity", "specificity", "auc"]
        ba = report["headline"]["balanced_accuracy"]
        assert float(rows["balanced_accuracy"]["ci_low"]) == pytest.approx(ba["ci_low"])
        assert float(rows["balanced_accuracy"]["var_rater"]) == pytest.approx(ba["components"]["rater"])
        assert float(rows["hype_error_rate"]["estimate"]) == pytest.approx(1 - ba["estimate"])
        assert float(rows["d_prime"]["estimate"]) == pytest.approx(report["headline"]["d_prime"])


def test_a_package_that_fails_midway_is_never_handed_out(small, monkeypatch):
    def broken(*args, **kwargs):
        yield b"judgment_id\n"
        raise RuntimeError("boom")

    monkeypatch.setattr(package, "iter_export", broken)
    with pytest.raises(RuntimeError, match="boom"):
        exports.build_package_file(small.study, report_builder=lambda s: {"ok": True})


def test_json_safe_turns_nan_and_numpy_into_plain_json():
    out = exports.json_safe({"a": float("nan"), "b": np.float64(0.5), "c": np.arange(3), 4: (np.int64(2),)})
    assert out == {"a": None, "b": 0.5, "c": [0, 1, 2], "4": [2]}
    json.dumps(out, allow_nan=False)


def test_export_judgments_command_writes_stdout_or_an_atomic_file(small, tmp_path: Path):
    out = io.StringIO()
    call_command("export_judgments", str(small.study.pk), "--format", "csv", stdout=out)
    assert out.getvalue().encode() == _export(small.study, fmt="csv")
    target = tmp_path / "j.jsonl"
    call_command(
        "export_judgments",
        str(small.study.pk),
        "--format",
        "jsonl",
        "--output",
        str(target),
        stderr=io.StringIO(),
    )
    assert target.read_bytes() == _export(small.study, fmt="jsonl")
    call_command(
        "export_judgments",
        str(small.study.pk),
        "--identities",
        "--output",
        str(tmp_path / "n.csv"),
        stderr=io.StringIO(),
    )
    assert "rater_username" in (tmp_path / "n.csv").read_text().splitlines()[0]


def test_export_judgments_command_rejects_an_unknown_study_or_folder(small, tmp_path: Path):
    with pytest.raises(CommandError, match="study 999999 does not exist"):
        call_command("export_judgments", "999999")
    with pytest.raises(CommandError, match="does not exist"):
        call_command("export_judgments", str(small.study.pk), "--output", str(tmp_path / "nope" / "x.csv"))


def test_export_judgments_command_streams_bytes_to_the_real_stdout(small, capsysbinary):
    call_command("export_judgments", str(small.study.pk), "--format", "jsonl")
    assert capsysbinary.readouterr().out == _export(small.study, fmt="jsonl")


def test_the_package_holds_raters_csv_with_the_consent_record_described_in_the_dictionary():
    from tests.factories import open_study, rater_for
    from turingtest.exports.raters import RATER_COLUMNS

    study = open_study(n_real=1, n_synthetic=1)
    _, consented = rater_for(study, seed=1)
    _, pending = rater_for(study, consent=False, seed=2)
    buf = io.BytesIO()
    exports.write_package(study, buf, report_builder=lambda s: {})
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as zf:
        rows = list(csv.DictReader(io.StringIO(zf.read("raters.csv").decode())))
        dictionary = list(csv.DictReader(io.StringIO(zf.read("raters_dictionary.csv").decode())))
        markdown = zf.read("data_dictionary.md").decode()
        assert "raters.csv" in zf.read("README.txt").decode()
    names = [c.name for c in RATER_COLUMNS]
    assert list(rows[0]) == names == [r["column"] for r in dictionary]
    assert all(f"| `{name}` |" in markdown for name in names)
    assert {
        "rater_pseudonym",
        "rater_role",
        "rater_years_experience",
        "consented_at",
        "consent_sha256",
        "qualification_result",
        "excluded",
    } <= set(names)
    first, second = rows
    assert first["assignment_id"] == str(consented.pk)
    assert first["rater_pseudonym"] == consented.rater.rater_profile.pseudonym
    assert first["consent_sha256"] == consented.consent_sha256 and len(first["consent_sha256"]) == 64
    assert first["consented_at"].endswith("Z") and first["consent_version"] == "1"
    assert first["excluded"] == "false" and first["qualification_result"] == ""
    assert (
        second["assignment_id"] == str(pending.pk)
        and second["consented_at"] == "" == second["consent_sha256"]
    )
