"""The generator network (noise GRU + U-Net frame decoder), the three networks together, and the fast
inference engine.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from . import winograd
from .audio_encoder import AudioEncoder
from .config import SDAConfig
from .frame_decoder import FrameDecoder, finish
from .identity_encoder import IdentityEncoder
from .noise_generator import NoiseGenerator

if TYPE_CHECKING:
    from .checkpoint import SDACheckpoint

PARTS = ("encoder", "encoder_id", "generator")


class GeneratorNetwork(nn.Module):
    """The checkpoint's ``generator``: ``rnn_noise.*`` then ``dcl.*``."""

    def __init__(self, config: SDAConfig) -> None:
        super().__init__()
        self.rnn_noise = NoiseGenerator(config.aux_latent)
        self.dcl = FrameDecoder(config.img_size, config.latent_dim, channels=config.out_channels,
                                base_channels=config.base_channels)
        self.emotions = config.emotions
        if config.emotions:  # fakebench's addition: one learned code per emotion, scaled by the intensity
            self.emotion = nn.Embedding(len(config.emotions), config.emotion_dim)
            nn.init.normal_(self.emotion.weight, std=0.5)

    def emotion_codes(self, index: torch.Tensor, intensity: torch.Tensor) -> torch.Tensor:
        """Emotion indices (B,) into ``emotions`` (-1: neutral) and intensities (B,) -> codes (B, emotion_dim);
        neutral and intensity 0 give the zero code."""
        codes = self.emotion(index.clamp(min=0))
        return codes * (intensity * (index >= 0)).to(codes.dtype)[:, None]

    def emotion_code(self, emotion: str, intensity: float) -> torch.Tensor:
        """One clip's code, (1, emotion_dim); an empty (1, 0) tensor for a generator without emotions."""
        if not self.emotions:
            return torch.zeros(1, 0)
        index = -1 if emotion == "neutral" else self.emotions.index(emotion)
        device = self.emotion.weight.device
        return self.emotion_codes(torch.tensor([index], device=device), torch.tensor([float(intensity)], device=device))

    def forward(self, z_c: torch.Tensor, noise: torch.Tensor, z_id: torch.Tensor,
                skips: list[torch.Tensor], still: torch.Tensor | None = None,
                emotion: torch.Tensor | None = None) -> torch.Tensor:
        """z_c (1, T, ·), noise (1, T, aux), z_id (1, T, ·), per-frame skips (T, C, H, W) -> (T, 3, h, w).
        ``still`` (1, 3, h, w): the identity frame, needed by a masked decoder; ``emotion`` (1, emotion_dim)."""
        noise, _ = self.rnn_noise(noise)
        parts = [z_c, noise, z_id]  # the original's order: [z_c, noise, z_id], then fakebench's emotion code
        if self.emotions:
            code = emotion if emotion is not None else torch.zeros(1, self.emotion.embedding_dim)
            parts.append(code[:, None].expand(1, z_c.shape[1], -1))
        return self.dcl(torch.cat(parts, dim=2)[0], skips, still)


@dataclass(eq=False)
class Networks:
    encoder: AudioEncoder
    encoder_id: IdentityEncoder
    generator: GeneratorNetwork

    @classmethod
    def build(cls, config: SDAConfig) -> Networks:
        return cls(
            encoder=AudioEncoder(config.audio_rate, config.audio_feat_samples, config.aud_enc_dim,
                                 config.rnn_gen_dim),
            encoder_id=IdentityEncoder(config.img_size, config.id_enc_dim, base_channels=config.base_channels),
            generator=GeneratorNetwork(config),
        )

    @classmethod
    def from_checkpoint(cls, ckpt: SDACheckpoint, device: str | torch.device = "cpu") -> Networks:
        """The three networks in eval mode. On the CPU their parameters are the checkpoint's own tensors
        (no copy): modify one and you modify the other."""
        with torch.device("meta"):  # no time spent initialising weights that are overwritten at once
            nets = cls.build(ckpt.config)
        for part in PARTS:
            module: nn.Module = getattr(nets, part)
            module.load_state_dict(with_batch_counts(module, getattr(ckpt, part)), strict=True, assign=True)
            module.to(device).eval().requires_grad_(False)
        return nets

    def modules(self) -> dict[str, nn.Module]:
        return {part: getattr(self, part) for part in PARTS}

    def state_dicts(self) -> dict[str, OrderedDict[str, torch.Tensor]]:
        return {part: module.state_dict() for part, module in self.modules().items()}


def with_batch_counts(module: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` plus a zero ``num_batches_tracked`` for each BN that lacks one (checkpoints may omit it)."""
    full = dict(state)
    for key in module.state_dict():
        if key.endswith("num_batches_tracked") and key not in full:
            full[key] = torch.zeros((), dtype=torch.long)
    return full


# ---------------------------------------------------------------------------------------------------
# Inference engine
#
# Equal to the reference pass (reference.py) up to float rounding, and faster because:
# - everything that depends only on the photo is computed once per clip: z_id, its share of the first
#   layer (a matmul: dcl.0 sees a 1x1 input), the skips and, since a convolution is linear, the skip half
#   of every U-Net block's first ConvTranspose (dcl1(cat(x, s)) = dcl1_x(x) + dcl1_s(s));
# - eval-mode BatchNorm is folded into the weights and biases of the conv before it;
# - on the CPU the decoder's convolutions use Winograd's algorithm (winograd.py), with fewer multiplications;
# - frames are decoded in small batches (cache-friendly, bounded memory) and long audio runs in chunks
#   with both GRUs' hidden states carried across chunk boundaries.


@dataclass(frozen=True, eq=False)
class _Layer:
    """One decoder convolution on NHWC activations, BatchNorm folded in, then ReLU (the last: raw, for `finish`).

    ``kind``: "winograd3x3" (Winograd filters (36, C, O)), "winograd_deconv" (filters (36, C, O)),
    "conv3x3" (Conv2d weight), "deconv" (ConvTranspose2d weight), "rgb" (phase kernels, the last layer).
    A 3x3 layer adds its block's per-clip term (the skip's share) instead of a bias. ``batch``: frames per
    call; small batches keep the large feature maps in cache, large ones make the small maps' matmuls
    efficient.
    """

    kind: str
    weight: torch.Tensor
    bias: torch.Tensor | None
    batch: int
    block: int  # index of the U-Net block (for its per-clip term)

    def __call__(self, x: torch.Tensor, terms: list[torch.Tensor]) -> torch.Tensor:
        if self.kind == "winograd3x3":
            return winograd.conv3x3(x, self.weight).add_(terms[self.block]).relu_()
        if self.kind == "conv3x3":
            y = F.conv2d(x.permute(0, 3, 1, 2), self.weight, padding=1).permute(0, 2, 3, 1)
            return y.add_(terms[self.block]).relu_()
        if self.kind == "winograd_deconv":
            return winograd.deconv4x4s2(x, self.weight).add_(self.bias).relu_()
        if self.kind == "deconv":
            y = F.conv_transpose2d(x.permute(0, 3, 1, 2), self.weight, self.bias, stride=2, padding=1)
            return y.relu_().permute(0, 2, 3, 1)
        return winograd.deconv4x4s2_direct(x, self.weight)  # `finish` makes the frames of it


@dataclass(frozen=True, eq=False)
class IdentityCode:
    """What the decoder needs from the photo, computed once per clip."""

    z_id: torch.Tensor  # (1, id_enc_dim)
    first_layer: torch.Tensor  # (h0 * w0 * C0,): z_id's (and the emotion code's) share of dcl.0 plus folded BN bias
    block_terms: list[torch.Tensor]  # per U-Net block (1, H, W, C): dcl1 of the skip plus folded bias
    still: torch.Tensor  # (1, h, w, 3): the identity frame, which a masked decoder blends with its colour


def fold_batchnorm(weight: torch.Tensor, bn: nn.BatchNorm1d | nn.BatchNorm2d, out_dim: int,
                   bias: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of ``bn(conv(x))`` as one conv; ``out_dim`` is the weight's output-channel axis."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shape = [1] * weight.ndim
    shape[out_dim] = -1
    shift = bn.bias - bn.running_mean * scale
    if bias is not None:
        shift = shift + bias * scale
    return weight * scale.view(shape), shift


class SDAEngine:
    """Fast inference for one checkpoint on one device; its frames equal the reference pass.

    ``algorithm`` is "winograd" (the CPU default) or "direct" (PyTorch's own convolutions, the default
    on CUDA, where cuDNN is faster). Activations are NHWC throughout; frames come out (n, h, w, 3).
    """

    def __init__(self, ckpt: SDACheckpoint, device: str | torch.device = "cpu", *, batch_frames: int = 32,
                 algorithm: str | None = None) -> None:
        self.config = ckpt.config
        self.device = torch.device(device)
        self.batch_frames = max(1, int(batch_frames))
        self.algorithm = algorithm or ("winograd" if self.device.type == "cpu" else "direct")
        if self.algorithm not in ("winograd", "direct"):
            raise ValueError(f"unknown algorithm {self.algorithm!r}")
        nets = Networks.from_checkpoint(ckpt, self.device)
        with torch.no_grad():
            self.encoder_id = nets.encoder_id
            frame_cnn = nets.encoder.encoder
            self.audio_convs = [
                (*fold_batchnorm(conv.weight, act[0], 0, conv.bias), conv.stride[0], conv.padding[0])
                for conv, act in zip(frame_cnn.cl[:-1], frame_cnn.activations, strict=True)
            ]
            last = frame_cnn.cl[-1]
            self.audio_last = (last.weight.clone(), last.bias.clone())
            self.audio_rnn = nets.encoder.rnn
            self.noise_rnn = nets.generator.rnn_noise
            self.emotion_code = nets.generator.emotion_code
            dcl = nets.generator.dcl
            w0, b0 = fold_batchnorm(dcl[0][0].weight, dcl[0][1], 1)
            c0, h0, w0_ = w0.shape[1:]
            self.first_shape = (h0, w0_, c0)
            self.first_weight = w0.permute(0, 2, 3, 1).flatten(1).contiguous()  # (latent_dim, h0 * w0 * C0)
            self.first_bias = b0.repeat(h0 * w0_)
            self.skip_convs: list[tuple[torch.Tensor, torch.Tensor]] = []
            self.layers: list[_Layer] = []
            for i, block in enumerate(dcl.blocks):
                self._add_block(i, block, (h0 << i) * (w0_ << i))
            last = winograd.deconv4x4s2_phases(dcl[-1].weight)
            self.layers.append(_Layer("rgb", last, None, self.batch_frames if self.algorithm == "direct" else 8, -1))

    def _add_block(self, index: int, block: nn.Module, area: int) -> None:
        """Fold U-Net block ``index`` (input feature map of ``area`` pixels) into two layers and a skip conv."""
        c = block.dcl1.weight.shape[1]
        w1, b1 = fold_batchnorm(block.dcl1.weight, block.activation1[0], 1)
        w2, b2 = fold_batchnorm(block.dcl2.weight, block.activation2[0], 1)
        # A stride-1 ConvTranspose2d is a Conv2d with the kernel flipped and in/out swapped.
        as_conv = w1.flip(2, 3).transpose(0, 1)
        self.skip_convs.append((as_conv[:, c:].contiguous(), b1))
        conv1 = as_conv[:, :c].contiguous()
        deconv = w2.contiguous(memory_format=torch.channels_last)
        if self.algorithm == "direct":
            self.layers += [_Layer("conv3x3", conv1, None, self.batch_frames, index),
                            _Layer("deconv", deconv, b2, self.batch_frames, index)]
            return
        # Batch sizes and the Winograd/direct choice for the transposed conv were measured on a 2-core
        # AVX2 CPU: Winograd's transforms cost memory traffic that only pays off on small feature maps.
        batch = self.batch_frames if area <= 48 else min(self.batch_frames, 8)
        self.layers.append(_Layer("winograd3x3", winograd.conv3x3_filters(conv1), None, batch, index))
        if area <= 192:
            self.layers.append(_Layer("winograd_deconv", winograd.deconv4x4s2_filters(w2), b2, batch, index))
        else:
            self.layers.append(_Layer("deconv", deconv, b2, batch, index))

    # -- per clip -------------------------------------------------------------------------------------

    @torch.inference_mode()
    def identity(self, image: torch.Tensor, emotion: str = "neutral", intensity: float = 0.0) -> IdentityCode:
        """Image (1, 3, h, w) in [-1, 1] and the clip's emotion -> the per-clip constants of the decoder."""
        image = image.to(self.device)
        z_id, skips = self.encoder_id(image)
        cfg = self.config
        begin = cfg.rnn_gen_dim + cfg.aux_latent  # latent order: z_c, noise, z_id, emotion code
        per_clip = torch.cat([z_id, self.emotion_code(emotion, intensity).to(self.device)], dim=1)
        first = torch.addmm(self.first_bias, per_clip, self.first_weight[begin:])[0]
        terms = [
            F.conv2d(skip, weight, bias, padding=1).permute(0, 2, 3, 1).contiguous()
            for (weight, bias), skip in zip(self.skip_convs, skips[::-1], strict=False)
        ]
        return IdentityCode(z_id=z_id, first_layer=first, block_terms=terms, still=image.permute(0, 2, 3, 1))

    # -- per chunk ------------------------------------------------------------------------------------

    @torch.inference_mode()
    def encode_audio(self, windows: torch.Tensor, hidden: torch.Tensor | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """Windows (n, W) -> z_c (n, rnn_gen_dim) and the GRU state to carry into the next chunk."""
        x = windows.to(self.device).unsqueeze(1)
        for weight, bias, stride, padding in self.audio_convs:
            x = F.conv1d(x, weight, bias, stride, padding).relu_()
        codes = torch.tanh(F.conv1d(x, *self.audio_last)).squeeze(-1)
        z, hidden = self.audio_rnn(codes.unsqueeze(0), hidden)
        return z[0], hidden

    @torch.inference_mode()
    def encode_noise(self, noise: torch.Tensor, hidden: torch.Tensor | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw noise (n, aux) -> the noise GRU's tanh outputs (n, aux) and its state for the next chunk."""
        out, hidden = self.noise_rnn(noise.to(self.device).unsqueeze(0), hidden)
        return out[0], hidden

    @torch.inference_mode()
    def decode(self, ident: IdentityCode, z_c: torch.Tensor, noise: torch.Tensor, *,
               keep_mask: bool = False) -> torch.Tensor:
        """Per-frame codes z_c (n, ·) and noise-GRU outputs (n, ·) -> frames (n, h, w, 3) in [-1, 1]; with
        ``keep_mask``, a masked decoder's frames carry its mask (the still's share, 0..1) as a fourth channel."""
        latent = torch.cat([z_c, noise], dim=1)  # the original's order is [z_c, noise, z_id]
        x = torch.addmm(ident.first_layer, latent, self.first_weight[:latent.shape[1]]).relu_()
        x = x.view(len(latent), *self.first_shape)
        layers = self.layers
        while layers:  # consecutive layers with the same batch size run together, piece by piece
            group = next((i for i, layer in enumerate(layers) if layer.batch != layers[0].batch), len(layers))
            pieces = []
            for piece in x.split(layers[0].batch):
                for layer in layers[:group]:
                    piece = layer(piece, ident.block_terms)
                pieces.append(piece)
            x = pieces[0] if len(pieces) == 1 else torch.cat(pieces)
            layers = layers[group:]
        frames = finish(x, ident.still, channel_dim=-1)
        if keep_mask and x.shape[-1] == 4:
            return torch.cat([frames, torch.sigmoid(x[..., 3:])], dim=-1)
        return frames

    # -- a whole clip ---------------------------------------------------------------------------------

    def run(self, image: torch.Tensor, signal: torch.Tensor, starts: torch.Tensor, noise: torch.Tensor, *,
            chunk_frames: int = 256, emotion: str = "neutral", intensity: float = 0.0,
            keep_mask: bool = False) -> Iterator[torch.Tensor]:
        """Frames of a clip, chunk by chunk: (n, h, w, 3) in [-1, 1] on the engine's device.

        ``signal`` is the padded audio (1-D), ``starts`` the first sample of each frame's window in it,
        ``noise`` the raw per-frame noise (T, aux). Chunking changes nothing but memory: both GRUs carry
        their hidden state from one chunk to the next.
        """
        ident = self.identity(image, emotion, intensity)
        signal = signal.to(self.device)
        offsets = torch.arange(self.config.audio_feat_samples, device=self.device)
        audio_state = noise_state = None
        chunk = max(1, int(chunk_frames))
        for begin in range(0, len(starts), chunk):
            idx = starts[begin:begin + chunk].to(self.device)
            z_c, audio_state = self.encode_audio(signal[idx[:, None] + offsets], audio_state)
            nz, noise_state = self.encode_noise(noise[begin:begin + chunk], noise_state)
            yield torch.cat([
                self.decode(ident, z_c[i:i + self.batch_frames], nz[i:i + self.batch_frames], keep_mask=keep_mask)
                for i in range(0, len(idx), self.batch_frames)
            ])
