"""The study package ZIP: judgments CSV, report and its headline, frozen config with its hash, dictionary."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import tempfile
import zipfile
from collections.abc import Callable
from typing import IO, Any

from turingtest import reports
from turingtest.csvsafe import NOTE as FORMULA_NOTE
from turingtest.exports.columns import data_dictionary_csv, data_dictionary_markdown
from turingtest.exports.raters import raters_csv, raters_dictionary_csv, raters_dictionary_markdown
from turingtest.exports.writers import iter_audit_csv, iter_export
from turingtest.jsonsafe import json_safe
from turingtest.studies.models import Study

# --- study package ------------------------------------------------------------------------


def frozen_config(study: Study) -> dict[str, Any]:
    """The study's frozen design and the hash stored when it opened (empty hash for drafts)."""
    return {
        "study_id": study.pk,
        "title": study.title,
        "status": study.status,
        "seed": study.seed,
        "opened_at": study.opened_at.isoformat() if study.opened_at else None,
        "closed_at": study.closed_at.isoformat() if study.closed_at else None,
        "config": study.config,
        "config_sha256": study.config_sha256,
    }


def _readme(
    study: Study, *, identities: bool, requested_by: str, config_digest: str, sentence: str = ""
) -> str:
    ident = (
        f"This package INCLUDES RATER IDENTITIES (usernames, e-mails), exported by admin "
        f"{requested_by or '(command line)'} on {dt.datetime.now(dt.UTC).isoformat()}. Handle as personal data."
        if identities
        else "Raters appear only by pseudonym (rater_pseudonym, assignment_id)."
    )
    return f"""DermGAN Turing Test - study package
Study {study.pk}: {study.title}
Status: {study.status}; config_sha256 (stored when the study opened): {study.config_sha256 or "(draft: not frozen)"}
Generated: {dt.datetime.now(dt.UTC).isoformat()}

Headline: {sentence or "(none)"}
Quote report.json's "headline" (also headline.csv): reader-study estimates whose intervals
treat raters and images as random samples. The pooled figures under "detection" are
judgment-level and assume independent judgments: do not quote them as the result.

Files
- headline.csv         balanced accuracy, sensitivity, specificity, AUC with crossed CIs and
                       variance components; HYPE error rates (1 - them); d' and c
- judgments.csv        one row per judgment (tutorial answers excluded); see data_dictionary.csv
- data_dictionary.csv  every column of judgments.csv: name, type, meaning (also data_dictionary.md)
- raters.csv           one row per rater who joined (pseudonym, role, experience, consent time,
                       consent text sha256 and version, qualification, exclusion); its columns are
                       in raters_dictionary.csv and the second part of data_dictionary.md
- audit.csv            the study's audit trail: design changes, opening, invitations, consent,
                       changed judgments, exports (this one included); columns in data_dictionary.md
- report.json          the study report (headline, detection, agreement, diagnosis, per-image,
                       response times; schema in turingtest/reports/schema.py)
- study_config.json    the frozen study design; study_config.json.sha256 is this file's own sha256,
                       config_sha256 inside it is the hash stored when the study opened
                       (sha256 of study_config.json: {config_digest})

{ident}
Booleans are true/false, timestamps ISO 8601 UTC, missing values are empty fields.
{FORMULA_NOTE}
"""


def write_package(
    study: Study,
    target: IO[bytes],
    *,
    identities: bool = False,
    requested_by: str = "",
    report_builder: Callable[[Study], dict[str, Any]] | None = None,
) -> None:
    """Write the study package ZIP into ``target`` (a seekable binary file).

    The judgments CSV is streamed into the archive entry chunk by chunk, so memory stays
    constant; the report is built first, before the export occupies the connection.
    """
    if report_builder is None:

        def report_builder(s: Study) -> dict[str, Any]:
            return reports.build(s).to_dict()

    report = report_builder(study)
    config_bytes = (json.dumps(frozen_config(study), indent=2, sort_keys=True) + "\n").encode()
    config_digest = hashlib.sha256(config_bytes).hexdigest()
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        headline = report.get("headline")
        zf.writestr(
            "README.txt",
            _readme(
                study,
                identities=identities,
                requested_by=requested_by,
                config_digest=config_digest,
                sentence=headline["sentence"] if headline else "",
            ),
        )
        if headline:
            zf.writestr("headline.csv", reports.headline_csv(report))
        zf.writestr("study_config.json", config_bytes)
        zf.writestr("study_config.json.sha256", f"{config_digest}  study_config.json\n")
        zf.writestr("report.json", json.dumps(json_safe(report), indent=2, allow_nan=False) + "\n")
        zf.writestr("data_dictionary.csv", data_dictionary_csv(identities=identities))
        zf.writestr(
            "data_dictionary.md",
            data_dictionary_markdown(identities=identities) + "\n" + raters_dictionary_markdown(),
        )
        zf.writestr("raters.csv", raters_csv(study))
        zf.writestr("raters_dictionary.csv", raters_dictionary_csv())
        with zf.open("judgments.csv", "w", force_zip64=True) as entry:
            chunks = iter_export(
                study, fmt="csv", identities=identities, requested_by=requested_by, export="package"
            )
            for chunk in chunks:
                entry.write(chunk)
        # After the judgments: iter_export recorded this package's own export event.
        with zf.open("audit.csv", "w", force_zip64=True) as entry:
            for chunk in iter_audit_csv(study, identities=identities):
                entry.write(chunk)


def build_package_file(study: Study, **kwargs: Any) -> tempfile._TemporaryFileWrapper:
    """The complete package in a temporary file, rewound; nothing is sent until it is whole."""
    tmp = tempfile.TemporaryFile(prefix="study-package-", suffix=".zip")  # noqa: SIM115 - caller closes
    try:
        write_package(study, tmp, **kwargs)
        tmp.seek(0)
    except BaseException:
        tmp.close()
        raise
    return tmp
