"""``python -m generator.metrics --real DIR --fake DIR``: fidelity metrics between two image folders."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from generator.classifier import ClassifierConfig, ClassifierExtractor, save_classifier, train_classifier
from generator.metrics.features import load_extractor, load_image_folder
from generator.metrics.results import evaluate_images, format_table, write_per_condition_csv


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m generator.metrics",
        description="Fidelity metrics (FID, KID, precision/recall, diversity) between two image folders. "
        "Sub-folder names are condition labels (DIR/MEL/*.png).",
    )
    parser.add_argument("--real", required=True, help="folder of real images")
    parser.add_argument("--fake", required=True, help="folder of synthetic images")
    parser.add_argument(
        "--extractor",
        default=None,
        help="classifier:PATH (a generator.classifier checkpoint) or inception[:PATH] (pytorch-fid weights "
        "pt_inception-2015-12-05-6726825d.pth; default path from DERMGAN_INCEPTION_WEIGHTS). Default: train "
        "a classifier on --real (needs ≥ 2 condition sub-folders) and save it to --save-classifier.",
    )
    parser.add_argument(
        "--inception-weights", default=None, metavar="PATH", help="shorthand for --extractor inception:PATH"
    )
    parser.add_argument("--save-classifier", default="fidelity-classifier.pt")
    parser.add_argument("--k", type=int, default=3, help="neighbours for precision/recall")
    parser.add_argument("--kid-subsets", type=int, default=100)
    parser.add_argument("--kid-subset-size", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--held-out",
        default=None,
        metavar="DIR",
        help="real images held out from --real: the real-vs-real baseline compares --real with them "
        "(default: two disjoint halves of --real)",
    )
    parser.add_argument(
        "--min-count", type=int, default=20, help="per-condition rows from fewer images carry a warning"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--per-condition-csv", default=None, help="also write per-condition rows to this CSV")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    try:
        real_images, real_labels, _ = load_image_folder(args.real)
        fake_images, fake_labels, _ = load_image_folder(args.fake)
        held_images, held_labels = (load_image_folder(args.held_out)[:2]) if args.held_out else (None, None)
        if args.inception_weights:
            args.extractor = f"inception:{args.inception_weights}"
        if args.extractor:
            extractor = load_extractor(args.extractor, device=args.device)
        else:
            if any(lbl is None for lbl in real_labels) or len(set(real_labels)) < 2:
                raise ValueError(
                    "training the default classifier needs real images in ≥ 2 condition sub-folders; "
                    "or pass --extractor"
                )
            conditions = tuple(sorted(set(real_labels)))  # type: ignore[arg-type]
            model, _history = train_classifier(
                real_images,
                real_labels,
                ClassifierConfig(conditions=conditions),
                seed=args.seed,
                device=args.device,
            )
            save_classifier(args.save_classifier, model=model, metadata={"trained_on": str(args.real)})
            print(
                f"trained the feature classifier on {len(real_images)} real images -> {args.save_classifier}",
                file=sys.stderr,
            )
            extractor = ClassifierExtractor.from_path(args.save_classifier, device=args.device)
        result = evaluate_images(
            real_images,
            fake_images,
            extractor,
            real_labels=real_labels,
            fake_labels=fake_labels,
            k=args.k,
            kid_subsets=args.kid_subsets,
            kid_subset_size=args.kid_subset_size,
            seed=args.seed,
            held_out_images=held_images,
            held_out_labels=held_labels,
            min_count=args.min_count,
        )
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.per_condition_csv:
        write_per_condition_csv(result, args.per_condition_csv)
    print(json.dumps(result.to_dict(), indent=2) if args.json else format_table(result))
    return 0
