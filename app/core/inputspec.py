"""How an image becomes a model's input tensor: a plain record, no torch (decoding and
scanning import it without importing the model)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class InputSpec:
    """How an image becomes the backbone's input tensor (applied in ``images.py``).

    resize: "stretch" (resize to size, ignoring aspect) or "center_crop" (resize the
    shorter side to size / crop_fraction, then take the central size crop).
    """

    size: tuple[int, int] = (224, 224)
    channels: int = 3
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    resize: str = "center_crop"
    crop_fraction: float = 0.875

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "InputSpec":
        return cls(size=tuple(d["size"]), channels=int(d["channels"]), mean=tuple(d["mean"]),
                   std=tuple(d["std"]), resize=d.get("resize", "stretch"),
                   crop_fraction=float(d.get("crop_fraction", 1.0)))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["size"] = list(self.size)
        d["mean"] = list(self.mean)
        d["std"] = list(self.std)
        return d

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.size[0], self.size[1])
