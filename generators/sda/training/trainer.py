"""One training step of the SDA GAN, and the state that makes resuming exact.

Each step: draw a batch and the generator's noise, generate the sequences, update the frame, sequence and
sync discriminators on real and generated data, then update the generator on
``l1 * L1 + frame * adv_frame + sequence * adv_seq + sync * adv_sync`` (weights in the config). Every
source of randomness (initial weights, noise, the sampler) is seeded and part of `Trainer.state_dict`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import SDACheckpoint
from ..config import NOISE_STD
from ..generator import Networks
from .config import TrainConfig
from .data import Batch
from .discriminators import FrameDiscriminator, SequenceDiscriminator, SyncDiscriminator, mouth_half

LOSS_NAMES = ("g_total", "l1", "g_frame", "g_sequence", "g_sync", "d_frame", "d_sequence", "d_sync")


def generate_sequences(nets: Networks, still: torch.Tensor, windows: torch.Tensor, noise: torch.Tensor,
                       emotion: torch.Tensor | None = None) -> torch.Tensor:
    """Still (B, 3, h, w), windows (B, L, W), raw noise (B, L, aux), emotion codes (B, emotion_dim) of a
    generator with emotions -> frames (B, L, 3, h, w) in [-1, 1].

    The batched form of `GeneratorNetwork.forward`: the same modules, latent order [z_c, noise, z_id, emotion].
    """
    b, length, window = windows.shape
    codes = nets.encoder.encoder(windows.reshape(b * length, 1, window)).view(b, length, -1)
    z_c, _ = nets.encoder.rnn(codes)
    z_id, skips = nets.encoder_id(still)
    nz, _ = nets.generator.rnn_noise(noise)
    per_clip = z_id if emotion is None else torch.cat([z_id, emotion], dim=1)
    latent = torch.cat([z_c, nz, per_clip[:, None].expand(b, length, -1)], dim=2).reshape(b * length, -1)
    frames = nets.generator.dcl(latent, [s.repeat_interleave(length, 0) for s in skips],
                                still.repeat_interleave(length, 0))
    return frames.view(b, length, *frames.shape[1:])


class Trainer:
    def __init__(self, config: TrainConfig, *, device: str = "cpu", seed: int = 0) -> None:
        self.config = config
        self.device = torch.device(device)
        self.model_config = config.model.sda_config()
        mc, dc = self.model_config, config.discriminators
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.nets = Networks.build(mc)
            self.frame_d = FrameDiscriminator(mc.img_size, dc.base_channels)
            self.sequence_d = SequenceDiscriminator(mc.img_size, mc.audio_rate, mc.audio_feat_samples,
                                                    dc.base_channels, dc.audio_dim, dc.audio_dim,
                                                    dc.sequence_downsample)
            self.sync_d = SyncDiscriminator(mc.img_size, mc.audio_rate, mc.audio_feat_samples,
                                            config.data.sync_frames, dc.base_channels, dc.sync_dim)
        for module in self.modules().values():
            module.to(self.device).train()
        oc = config.optim
        generator_params = [p for part in self.nets.modules().values() for p in part.parameters()]
        self.optimisers = {
            "generator": torch.optim.Adam(generator_params, oc.generator_lr, betas=oc.betas),
            "frame_d": torch.optim.Adam(self.frame_d.parameters(), oc.frame_lr, betas=oc.betas),
            "sequence_d": torch.optim.Adam(self.sequence_d.parameters(), oc.sequence_lr, betas=oc.betas),
            "sync_d": torch.optim.Adam(self.sync_d.parameters(), oc.sync_lr, betas=oc.betas),
        }
        self.base_lrs = {"generator": oc.generator_lr, "frame_d": oc.frame_lr, "sequence_d": oc.sequence_lr,
                         "sync_d": oc.sync_lr}
        self.noise_rng = torch.Generator(device="cpu").manual_seed(seed + 1)
        self.step = 0
        h = mc.img_size[0]
        mask = torch.full((h, 1), config.loss.l1_upper_face)
        mask[h // 2:] = 1.0
        self.l1_mask = mask.to(self.device)

    def modules(self) -> dict[str, nn.Module]:
        return {**self.nets.modules(), "frame_d": self.frame_d, "sequence_d": self.sequence_d, "sync_d": self.sync_d}

    def discriminators(self) -> list[nn.Module]:
        return [self.frame_d, self.sequence_d, self.sync_d]

    def lr_factor(self, step: int) -> float:
        oc = self.config.optim
        return oc.lr_decay ** (step // oc.lr_decay_every)

    def draw_noise(self, batch: int, length: int) -> torch.Tensor:
        noise = torch.randn((batch, length, self.model_config.aux_latent), generator=self.noise_rng)
        return noise.mul_(NOISE_STD).to(self.device)

    def weighted_l1(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """Mean absolute error, each row of the face weighted by the L1 mask (lower half 1)."""
        per_row = (fake - real).abs().mean(dim=-1, keepdim=True)  # (..., 3, h, 1)
        return (per_row * self.l1_mask).sum(dim=(-2, -1)).mean() / self.l1_mask.sum()

    def train_step(self, batch: Batch) -> dict[str, float]:
        """One step on ``batch``; returns the losses (floats). Advances ``step`` by one."""
        cfg, dev = self.config, self.device
        lw = cfg.loss
        factor = self.lr_factor(self.step)
        for name, opt in self.optimisers.items():
            for group in opt.param_groups:
                group["lr"] = self.base_lrs[name] * factor
        still, real, windows = batch.still.to(dev), batch.frames.to(dev), batch.windows.to(dev)
        b, length = windows.shape[:2]
        k = cfg.data.sync_frames
        emotion = None
        if self.model_config.emotions:
            emotion = self.nets.generator.emotion_codes(batch.emotion.to(dev), batch.intensity.to(dev))
        fake = generate_sequences(self.nets, still, windows, self.draw_noise(b, length), emotion)

        rows = torch.arange(b, device=dev)[:, None]
        frame_idx = batch.sync_start.to(dev)[:, None] + torch.arange(k, device=dev)
        sync_audio = windows[torch.arange(b, device=dev), batch.sync_start.to(dev) + k // 2]
        stills = still.repeat_interleave(length, 0)

        def mouths(frames: torch.Tensor) -> torch.Tensor:
            return mouth_half(frames[rows, frame_idx])

        def bce(logits: torch.Tensor, target: float) -> torch.Tensor:
            return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))

        # -- discriminators
        for d in self.discriminators():
            d.requires_grad_(True)
        detached = fake.detach()
        d_frame = bce(self.frame_d(real.flatten(0, 1), stills), 1.0) + \
            bce(self.frame_d(detached.flatten(0, 1), stills), 0.0)
        d_sequence = bce(self.sequence_d(real, windows), 1.0) + bce(self.sequence_d(detached, windows), 0.0)
        d_sync = bce(self.sync_d(mouths(real), sync_audio), 1.0) + 0.5 * (
            bce(self.sync_d(mouths(real), batch.off_window.to(dev)), 0.0)
            + bce(self.sync_d(mouths(detached), sync_audio), 0.0))
        for name, loss in (("frame_d", d_frame), ("sequence_d", d_sequence), ("sync_d", d_sync)):
            self.optimisers[name].zero_grad(set_to_none=True)
            loss.backward()
            self.optimisers[name].step()

        # -- generator
        for d in self.discriminators():
            d.requires_grad_(False)
        l1 = self.weighted_l1(fake, real)
        g_frame = bce(self.frame_d(fake.flatten(0, 1), stills), 1.0)
        g_sequence = bce(self.sequence_d(fake, windows), 1.0)
        g_sync = bce(self.sync_d(mouths(fake), sync_audio), 1.0)
        g_total = lw.l1 * l1 + lw.frame * g_frame + lw.sequence * g_sequence + lw.sync * g_sync
        self.optimisers["generator"].zero_grad(set_to_none=True)
        g_total.backward()
        self.optimisers["generator"].step()
        self.step += 1
        values = (g_total, l1, g_frame, g_sequence, g_sync, d_frame, d_sequence, d_sync)
        return {name: float(v.detach()) for name, v in zip(LOSS_NAMES, values, strict=True)}

    # -- saving -----------------------------------------------------------------------------------------

    def checkpoint(self, source: str) -> SDACheckpoint:
        """The generator's three networks as an SDA checkpoint (CPU float32 copies)."""
        parts = {part: {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}
                 for part, module in self.nets.modules().items()}
        return SDACheckpoint(config=self.model_config, **parts, source=source, sha256=None)

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs to continue exactly; tensors and plain values only."""
        return {
            "step": self.step,
            "modules": {name: m.state_dict() for name, m in self.modules().items()},
            "optimisers": {name: opt.state_dict() for name, opt in self.optimisers.items()},
            "noise_rng": self.noise_rng.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, module in self.modules().items():
            module.load_state_dict(state["modules"][name])
        for name, opt in self.optimisers.items():
            opt.load_state_dict(state["optimisers"][name])
        self.noise_rng.set_state(state["noise_rng"])
        self.step = int(state["step"])
