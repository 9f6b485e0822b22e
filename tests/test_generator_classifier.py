"""generator.classifier: a tiny classifier trained in the test (seconds), never downloaded."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from generator.classifier import (
    ClassifierCheckpointError,
    ClassifierConfig,
    ClassifierExtractor,
    evaluate_classifier,
    extract_features,
    load_classifier,
    main,
    save_classifier,
    train_classifier,
)

CONFIG = ClassifierConfig(conditions=("DARK", "LIGHT"), image_size=16, width=4, depth=2)


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """These tiny networks run faster on one thread (tests/conftest.py)."""


def _images(n: int, seed: int) -> tuple[list[Image.Image], list[str]]:
    """Dark vs light noisy squares: a task a working classifier must learn in a few epochs."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for i in range(n):
        dark = i % 2 == 0
        base = 60 if dark else 190
        arr = np.clip(base + rng.normal(0, 25, size=(16, 16, 3)), 0, 255).astype(np.uint8)
        images.append(Image.fromarray(arr))
        labels.append("DARK" if dark else "LIGHT")
    return images, labels


def test_training_learns_an_easy_task_and_evaluation_reports_top1_top3_and_sensitivity():
    images, labels = _images(40, seed=0)
    model, history = train_classifier(
        images, labels, CONFIG, epochs=8, batch_size=8, seed=0, device="cpu", progress=False
    )
    assert history.loss[-1] < history.loss[0]
    test_images, test_labels = _images(20, seed=1)
    result = evaluate_classifier(model, test_images, test_labels)
    assert result["top1"] >= 0.9
    assert result["top3"] == 1.0  # two classes: the true one is always in the top 3
    assert set(result["sensitivity"]) == {"DARK", "LIGHT"}


def test_the_same_seed_gives_the_same_weights_and_another_seed_does_not():
    images, labels = _images(12, seed=0)
    kw = dict(epochs=1, batch_size=4, device="cpu", progress=False)
    a, _ = train_classifier(images, labels, CONFIG, seed=3, **kw)
    b, _ = train_classifier(images, labels, CONFIG, seed=3, **kw)
    c, _ = train_classifier(images, labels, CONFIG, seed=4, **kw)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    assert not torch.equal(a.head.weight, c.head.weight)


def test_a_checkpoint_round_trips_with_config_metadata_and_sha256(tmp_path):
    images, labels = _images(8, seed=0)
    model, _ = train_classifier(images, labels, CONFIG, epochs=1, batch_size=4, device="cpu", progress=False)
    sha = save_classifier(tmp_path / "clf.pt", model=model, metadata={"note": "test"})
    loaded, meta, sha2 = load_classifier(tmp_path / "clf.pt")
    assert sha == sha2 and meta == {"note": "test"}
    assert loaded.config == CONFIG
    feats = extract_features(loaded, images)
    assert feats.shape == (8, CONFIG.feature_dim)
    np.testing.assert_allclose(feats, extract_features(model, images), rtol=1e-6)
    extractor = ClassifierExtractor.from_path(tmp_path / "clf.pt", device="cpu")
    assert extractor.sha256 == sha and extractor.feature_dim == CONFIG.feature_dim
    assert extractor.extract(images).shape == (8, CONFIG.feature_dim)


def test_bad_checkpoint_files_get_a_clear_error(tmp_path):
    with pytest.raises(ClassifierCheckpointError, match="not found"):
        load_classifier(tmp_path / "missing.pt")
    truncated = tmp_path / "truncated.pt"
    images, labels = _images(4, seed=0)
    model, _ = train_classifier(images, labels, CONFIG, epochs=1, batch_size=4, device="cpu", progress=False)
    save_classifier(truncated, model=model)
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(ClassifierCheckpointError, match="not a readable"):
        load_classifier(truncated)
    other = tmp_path / "other.pt"
    torch.save({"format": "something-else"}, other)
    with pytest.raises(ClassifierCheckpointError, match="not a dermgan-classifier"):
        load_classifier(other)


def test_labels_outside_the_config_and_one_class_configs_are_rejected():
    images, _ = _images(4, seed=0)
    with pytest.raises(ValueError, match="not in the classifier's conditions"):
        train_classifier(images, ["DARK", "LIGHT", "MEL", "DARK"], CONFIG, epochs=1, progress=False)
    with pytest.raises(ValueError, match="at least 2 classes"):
        ClassifierConfig(conditions=("A",)).validate()


def test_the_cli_trains_and_evaluates_a_folder(tmp_path, capsys):
    images, labels = _images(12, seed=0)
    for i, (im, lbl) in enumerate(zip(images, labels)):
        (tmp_path / "data" / lbl).mkdir(parents=True, exist_ok=True)
        im.save(tmp_path / "data" / lbl / f"{i}.png")
    out = tmp_path / "clf.pt"
    assert (
        main(
            [
                "train",
                "--data",
                str(tmp_path / "data"),
                "--out",
                str(out),
                "--image-size",
                "16",
                "--width",
                "4",
                "--depth",
                "2",
                "--epochs",
                "2",
                "--batch-size",
                "4",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert out.is_file()
    assert main(["eval", "--data", str(tmp_path / "data"), "--checkpoint", str(out)]) == 0
    assert '"top1"' in capsys.readouterr().out
