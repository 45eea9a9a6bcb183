"""``meso4`` and ``mesoinception4``: MesoNet (Afchar, Nozick, Yamagishi, Echizen; WIFS 2018), two small CNNs that
look at the mesoscopic texture of an aligned face crop, in torch, with the layers of the Keras original.

Input: aligned face crops, 256 x 256 RGB scaled to [0, 1] (`fakebench.faces.align_faces`), ``frames_per_clip``
face frames spread evenly over each clip (cached per Sample).

- **Meso-4**: four blocks Conv ('same' padding) -> ReLU -> BatchNorm -> MaxPool: (3x3, 8 filters, pool 2),
  (5x5, 8, 2), (5x5, 16, 2), (5x5, 16, 4); flatten 8x8x16 = 1024 -> Dropout 0.5 -> Dense 16 + LeakyReLU(0.1)
  -> Dropout 0.5 -> Dense 1. 27,977 trainable parameters.
- **MesoInception-4**: the first two blocks are Inception modules (branches 1x1; 1x1 -> 3x3; 1x1 -> 3x3
  dilation 2; 1x1 -> 3x3 dilation 3; each conv + ReLU; widths (1, 4, 4, 2) -> 11 channels, then (2, 4, 4, 2) ->
  12), each + BatchNorm + MaxPool 2x2; then the two 5x5x16 blocks and the same head. 28,615 trainable parameters.

Training (CPU, seeded, deterministic): Adam lr 1e-3 on the crops of the training clips, binary cross-entropy on
the logit with label 1 = fake (the original used the mean squared error on a sigmoid output, and its published
weights read 1 = real: here the output is always P(fake)). After each epoch the clips of the VALIDATION split
are scored and the epoch with the best validation AUC is kept, ties (a small validation split saturates) going to the
lower validation log loss; training stops after ``patience`` epochs without improvement. The test split never
reaches ``fit``. A clip's score is the mean of its frames' probabilities.

torch is imported only when a network is built, so discovering the detectors stays light.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from fakebench.detectors.base import (
    DetectorBase,
    Finding,
    Scored,
    labels_of,
    register,
    score_each,
    train_by_validation,
)
from fakebench.errors import ConfigError, FakebenchError, WeightsError
from fakebench.registry import Option
from fakebench.samples import Sample

CROP = 256
LR = 1e-3
PARAMETERS = {"meso4": 27_977, "mesoinception4": 28_615}  # trainable, as in the Keras original


# ---------------------------------------------------------------------------------------------------- networks
def build_network(architecture: str):
    """A fresh ``meso4`` or ``mesoinception4`` torch module: (N, 3, 256, 256) in [0, 1] -> (N,) logits of P(fake)."""
    import torch
    from torch import nn

    def conv_block(c_in: int, c_out: int, k: int, pool: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(c_in, c_out, k, padding=k // 2), nn.ReLU(), nn.BatchNorm2d(c_out),
                             nn.MaxPool2d(pool))

    class Inception(nn.Module):
        """Four branches: 1x1; 1x1 -> 3x3; 1x1 -> 3x3 dilation 2; 1x1 -> 3x3 dilation 3, concatenated."""

        def __init__(self, c_in: int, a: int, b: int, c: int, d: int) -> None:
            super().__init__()

            def branch(width: int, dilation: int) -> nn.Sequential:
                return nn.Sequential(nn.Conv2d(c_in, width, 1), nn.ReLU(),
                                     nn.Conv2d(width, width, 3, padding=dilation, dilation=dilation), nn.ReLU())

            self.b1 = nn.Sequential(nn.Conv2d(c_in, a, 1), nn.ReLU())
            self.b2, self.b3, self.b4 = branch(b, 1), branch(c, 2), branch(d, 3)

        def forward(self, x):
            return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], dim=1)

    def inception_block(c_in: int, widths: tuple[int, int, int, int]) -> nn.Sequential:
        return nn.Sequential(Inception(c_in, *widths), nn.BatchNorm2d(sum(widths)), nn.MaxPool2d(2))

    class MesoNet(nn.Module):
        def __init__(self, features: nn.Sequential) -> None:
            super().__init__()
            self.features = features
            self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(8 * 8 * 16, 16), nn.LeakyReLU(0.1),
                                      nn.Dropout(0.5), nn.Linear(16, 1))

        def forward(self, x):
            return self.head(self.features(x)).squeeze(1)

    if architecture == "meso4":
        features = nn.Sequential(conv_block(3, 8, 3, 2), conv_block(8, 8, 5, 2), conv_block(8, 16, 5, 2),
                                 conv_block(16, 16, 5, 4))
    elif architecture == "mesoinception4":
        features = nn.Sequential(inception_block(3, (1, 4, 4, 2)), inception_block(11, (2, 4, 4, 2)),
                                 conv_block(12, 16, 5, 2), conv_block(16, 16, 5, 4))
    else:
        raise ConfigError(f"unknown MesoNet architecture {architecture!r}; meso4 or mesoinception4")
    return MesoNet(features)


def count_parameters(network) -> int:
    return sum(p.numel() for p in network.parameters() if p.requires_grad)


# ---------------------------------------------------------------------------------------------------- face crops
def face_crops(sample: Sample, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """(frame indices, uint8 crops (n, 256, 256, 3)) of up to ``frames`` face frames spread over the clip."""
    from fakebench.faces import align_faces, face_frame_indices

    key = f"detector:meso:{frames}"
    cache = sample._cache
    if key not in cache:
        track = sample.track
        idx = face_frame_indices(track, frames)
        if len(idx) == 0:
            raise FakebenchError("no face in any frame")
        cache[key] = (idx, align_faces(sample.clip.frames[idx], track.landmarks[idx], (CROP, CROP)))
    return cache[key]


def _as_input(crops: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float().div_(255.0)


# ---------------------------------------------------------------------------------------------------- detectors
class MesoDetector(DetectorBase):
    """MesoNet on aligned face crops; subclasses name the architecture."""

    architecture: ClassVar[str] = ""
    needs: ClassVar[tuple[str, ...]] = ("face",)
    options: ClassVar[tuple[Option, ...]] = (
        Option("epochs", int, 8, min=1, max=200, help="most training epochs (the best on validation AUC is kept)"),
        Option("frames_per_clip", int, 8, min=1, max=64, help="face frames sampled per clip, for training and "
                                                              "scoring"),
        Option("batch_size", int, 16, min=1, max=512, help="crops per training step"),
        Option("patience", int, 3, min=1, max=200, help="stop after this many epochs without a better "
                                                        "validation AUC"),
        Option("seed", int, 0, min=0, help="seed of the initial weights, dropout and shuffling"),
    )

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.network = None

    # ------------------------------------------------------------------ training
    def fit(self, train: Sequence[Sample], val: Sequence[Sample]) -> MesoDetector:
        import torch

        y_train = labels_of(train)
        y_val = labels_of(val)
        frames = self.config["frames_per_clip"]
        crops, targets = [], []
        for sample, label in zip(train, y_train, strict=True):
            if self.status(sample) != "ok":
                continue
            try:
                _, c = face_crops(sample, frames)
            except FakebenchError:
                continue
            crops.append(c)
            targets.append(np.full(len(c), float(label), np.float32))
        if not crops:
            raise ConfigError(f"{self.name}: no training clip has a face to learn from")
        y = np.concatenate(targets)
        if len(set(y.tolist())) < 2:
            raise ConfigError("the training split has one label only; a detector needs real and fake clips")
        x = np.concatenate(crops)

        deterministic = torch.are_deterministic_algorithms_enabled()
        torch.use_deterministic_algorithms(True)
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.config["seed"])
                history = self._train(x, y, val, y_val)
        finally:
            torch.use_deterministic_algorithms(deterministic)
        self.info = {"architecture": self.architecture, "n_train": len(train), "n_val": len(val),
                     "n_crops": len(x), "parameters": count_parameters(self.network), **history}
        return self

    def _train(self, x: np.ndarray, y: np.ndarray, val: Sequence[Sample], y_val: np.ndarray) -> dict[str, Any]:
        import torch
        import torch.nn.functional as F

        network = build_network(self.architecture)
        self.network = network
        optimiser = torch.optim.Adam(network.parameters(), lr=LR)
        generator = torch.Generator().manual_seed(self.config["seed"])
        targets = torch.from_numpy(y)
        batch = self.config["batch_size"]

        def run_epoch() -> None:
            order = torch.randperm(len(x), generator=generator)
            for start in range(0, len(x), batch):
                chosen = order[start:start + batch]
                if len(chosen) < 2 and len(x) > 1:  # BatchNorm needs two crops; the straggler waits a round
                    continue
                logits = network(_as_input(x[chosen.numpy()]))
                loss = F.binary_cross_entropy_with_logits(logits, targets[chosen])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()

        return train_by_validation(network, run_epoch,
                                   lambda: self.predict_proba(val) if len(val) else np.zeros(0), y_val,
                                   epochs=self.config["epochs"], patience=self.config["patience"])

    # ------------------------------------------------------------------ scoring
    def _fitted(self):
        if self.network is None:
            raise ConfigError(f"the {self.name} detector is not fitted; fit it or load a saved one")
        return self.network

    def frame_probabilities(self, sample: Sample) -> tuple[np.ndarray, np.ndarray]:
        """(frame indices, P(fake) of each sampled face frame)."""
        import torch

        network = self._fitted()
        idx, crops = face_crops(sample, self.config["frames_per_clip"])
        network.eval()
        with torch.no_grad():
            p = torch.sigmoid(network(_as_input(crops))).numpy().astype(np.float64)
        return idx, p

    def predict_proba(self, samples: Sequence[Sample]) -> np.ndarray:
        return self.score(samples).p_fake

    def score(self, samples: Sequence[Sample]) -> Scored:
        self._fitted()
        return score_each(self, samples, lambda s: float(np.mean(self.frame_probabilities(s)[1])))

    def explain(self, sample: Sample) -> list[Finding]:
        """How many sampled face frames look generated (P(fake) > 0.5), the mean P, and the frames concerned."""
        idx, p = self.frame_probabilities(sample)
        fake = p > 0.5
        mean = float(np.mean(p))
        findings = [Finding(f"face crops look generated in {int(fake.sum())} of {len(p)} sampled frames "
                            f"(mean P {mean:.2f})", value=mean, frames=tuple(int(i) for i in idx[fake]))]
        j = int(np.argmax(p))
        findings.append(Finding(f"most generated-looking face: frame {int(idx[j])} (P {p[j]:.2f}); most real-looking: "
                                f"frame {int(idx[np.argmin(p)])} (P {p.min():.2f})", value=float(p[j]),
                                frames=(int(idx[j]),)))
        return findings

    # ------------------------------------------------------------------ saving
    def state(self) -> dict[str, np.ndarray]:
        """The torch state_dict, every tensor as a float32 NumPy array (BatchNorm's step counters included)."""
        return {k: v.detach().cpu().numpy().astype(np.float32) for k, v in self._fitted().state_dict().items()}

    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        import torch

        network = build_network(self.architecture)
        own = network.state_dict()
        if set(state) != set(own) or any(tuple(np.shape(state[k])) != tuple(own[k].shape) for k in own):
            raise WeightsError(f"the saved weights do not fit this fakebench's {self.name} network; train it again")
        network.load_state_dict({k: torch.from_numpy(np.array(state[k], np.float32)).to(own[k].dtype)
                                 for k in own}, strict=True)
        network.eval()
        self.network = network


@register("meso4")
class Meso4Detector(MesoDetector):
    architecture: ClassVar[str] = "meso4"
    description: ClassVar[str] = ("MesoNet Meso-4 (Afchar et al. 2018): a 4-block CNN on 256x256 aligned face "
                                  "crops, trained here; clip score = mean frame P(fake)")


@register("mesoinception4")
class MesoInception4Detector(MesoDetector):
    architecture: ClassVar[str] = "mesoinception4"
    description: ClassVar[str] = ("MesoNet MesoInception-4 (Afchar et al. 2018): Inception then conv blocks on "
                                  "256x256 aligned face crops, trained here; clip score = mean frame P(fake)")
