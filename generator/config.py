"""The one configuration dataclass of the DermGAN generator network.

Checkpoints store it (as JSON) so rendering never needs training flags.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Semantic-map channel layout (see generator/semantic_map.py):
#   0..2  healthy-skin colour, constant over the image, scaled to [-1, 1]
#   3     lesion mask (union of all lesions), 0/1
#   4..   one channel per condition code (one-hot inside that condition's lesions)
N_BASE_CHANNELS = 4


@dataclass(frozen=True)
class GeneratorConfig:
    conditions: tuple[str, ...]  # condition codes in semantic-map channel order
    image_size: int = 256  # render size H = W; must be divisible by 2**num_downs
    ngf: int = 64  # filters in the generator's first layer
    num_downs: int = 8  # U-Net depth; 8 takes 256 px down to 1 px
    upsample: str = "resize"  # "resize" (DermGAN default) or "transpose" (pix2pix)
    dropout: bool = True  # dropout in the innermost decoder blocks (noise source)
    out_channels: int = 3  # RGB
    extra: dict[str, Any] = field(default_factory=dict)  # free-form, e.g. encoding notes

    @property
    def in_channels(self) -> int:
        return N_BASE_CHANNELS + len(self.conditions)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["conditions"] = list(self.conditions)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GeneratorConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown generator config fields: {sorted(unknown)}")
        data = dict(data)
        data["conditions"] = tuple(data["conditions"])
        return cls(**data)
