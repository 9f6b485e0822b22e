"""generator.inception: the plain-torch FID InceptionV3 without the real weights (none exist here)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from generator.inception import (
    WEIGHTS_FILENAME,
    FIDInceptionV3,
    InceptionExtractor,
    InceptionUnavailableError,
    load_inception,
)


def test_the_network_has_the_parameter_count_of_torchvision_inception_v3_with_1008_classes():
    # torchvision's inception_v3 without the auxiliary head has 23,834,568 parameters with a
    # 1000-way fc; the ported TF graph has 1008 outputs: + 8 · 2048 + 8 = 23,850,960.
    assert sum(p.numel() for p in FIDInceptionV3().parameters()) == 23_850_960


def test_without_weights_it_says_it_is_unavailable_and_names_the_file(monkeypatch, tmp_path):
    monkeypatch.delenv("DERMGAN_INCEPTION_WEIGHTS", raising=False)
    with pytest.raises(InceptionUnavailableError, match="unavailable") as info:
        load_inception(None)
    assert WEIGHTS_FILENAME in str(info.value) and "DERMGAN_INCEPTION_WEIGHTS" in str(info.value)
    with pytest.raises(InceptionUnavailableError, match="not found"):
        load_inception(tmp_path / "nope.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a state dict")
    with pytest.raises(InceptionUnavailableError, match="not a readable"):
        load_inception(junk)
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv.weight": torch.zeros(1)}, wrong)
    with pytest.raises(InceptionUnavailableError, match="not the InceptionV3 FID state dict"):
        load_inception(wrong)


@pytest.mark.slow
def test_a_state_dict_with_the_pytorch_fid_key_names_loads_and_gives_2048_features(tmp_path, monkeypatch):
    torch.manual_seed(0)
    state = FIDInceptionV3().state_dict()
    # exports of the real file may carry BatchNorm counters; they must be accepted
    state["Conv2d_1a_3x3.bn.num_batches_tracked"] = torch.tensor(0)
    path = tmp_path / WEIGHTS_FILENAME
    torch.save(state, path)
    monkeypatch.setenv("DERMGAN_INCEPTION_WEIGHTS", str(path))
    extractor = InceptionExtractor.from_path(None, device="cpu")
    assert len(extractor.sha256) == 64
    images = [Image.fromarray(np.full((40, 40, 3), v, np.uint8)) for v in (30, 200)]
    feats = extractor.extract(images)
    assert feats.shape == (2, 2048) and np.all(np.isfinite(feats))
    assert not np.allclose(feats[0], feats[1])
