"""Identity preservation: does a (fake) clip still show the person of its reference photo or clip?

dlib's face recognition network (dlib_face_recognition_resnet_model_v1.dat, shipped by the
face_recognition_models package: a 29-layer ResNet, LFW accuracy 99.38%) turns a face, upright and
scaled by its landmarks into a 150x150 chip, into a 128-d descriptor. Two faces are the same person
when their descriptors are less than 0.6 apart (Euclidean), dlib's own threshold. Per clip:

    identity_distance = mean_i ||d_i - r||,   identity_cosine = mean_i (d_i . r) / (|d_i| |r|)

over frames i sampled evenly from the clip's face frames, with r the reference descriptor (the mean
over the reference clip's sampled frames, or the photo's one descriptor). The landmarks are the
FaceTrack's; nothing is detected again (a reference photo has no track: its face is found once). The
frame sampling and the descriptors are `fakebench.faces.face_frame_indices` and `face_descriptors`.

With facenet-pytorch's VGGFace2 weights present (never downloaded), ``facenet_cosine`` is the same
cosine on InceptionResnetV1's 512-d embeddings of 160x160 aligned crops.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from fakebench.errors import ConfigError, WeightsError
from fakebench.faces import DLIB_DESCRIPTOR_MODEL, face_descriptors, face_frame_indices
from fakebench.metrics.registry import MetricContext, register_metric
from fakebench.weights import KNOWN_WEIGHTS, find_weight, load_checkpoint, locate

if TYPE_CHECKING:
    from fakebench.faces import FaceTrack
    from fakebench.media import Clip
    from fakebench.samples import Sample

DLIB_THRESHOLD = 0.6
DLIB_MODEL = DLIB_DESCRIPTOR_MODEL
FACENET_MODEL = (f"facenet-pytorch InceptionResnetV1 512-d, VGGFace2 "
                 f"({KNOWN_WEIGHTS['facenet_vggface2'].filename})")
FACENET_SIZE = 160
FACENET_CLASSES = 8631  # VGGFace2 identities: the checkpoint's classifier, unused for embeddings

Reference = np.ndarray | tuple["Clip", "FaceTrack"]


# ---------------------------------------------------------------------------------------------- FaceNet


def load_facenet(path: str | os.PathLike | None = None, *, device: str = "cpu"):
    """facenet-pytorch's InceptionResnetV1 with the VGGFace2 weights, found by `find_weight` (no download)."""
    found = find_weight("facenet_vggface2", path, option="--facenet-weights")
    stat = found.stat()
    return _load_facenet(str(found.resolve()), stat.st_mtime_ns, stat.st_size, device)


@lru_cache(maxsize=1)
def _load_facenet(path: str, mtime_ns: int, size: int, device: str):
    from facenet_pytorch import InceptionResnetV1
    from torch import nn

    net = InceptionResnetV1(pretrained=None, classify=False)
    net.logits = nn.Linear(512, FACENET_CLASSES)
    state = load_checkpoint(path, name="facenet_vggface2")
    try:
        net.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as e:
        raise WeightsError(f"{path} does not hold facenet-pytorch's VGGFace2 InceptionResnetV1 weights "
                           f"({str(e).splitlines()[0]}); get {KNOWN_WEIGHTS['facenet_vggface2'].source}"
                           ) from None
    return net.eval().requires_grad_(False).to(device)


def facenet_embeddings(frames: Sequence[np.ndarray] | np.ndarray, landmarks: np.ndarray, model,
                       device: str = "cpu") -> np.ndarray:
    """L2-normalised 512-d embeddings of 160x160 crops aligned to fakebench's mean-face template.

    Pixels are standardised as facenet-pytorch's ``fixed_image_standardization``: (x - 127.5) / 128.
    """
    import torch

    from fakebench.faces import align_faces

    crops = align_faces(np.stack(frames), np.asarray(landmarks), (FACENET_SIZE, FACENET_SIZE))
    x = torch.from_numpy(crops).to(device).permute(0, 3, 1, 2).float()
    with torch.inference_mode():
        return model((x - 127.5) / 128.0).cpu().numpy().astype(np.float64)


# ---------------------------------------------------------------------------------------------- metrics


def _cosine(vectors: np.ndarray, reference: np.ndarray) -> np.ndarray:
    return vectors @ reference / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(reference))


def _faces(source: Reference, frames: int, what: str) -> tuple[list[np.ndarray], np.ndarray]:
    """(frames, landmarks (N, 68, 2)) of a photo's face or of a clip's sampled face frames."""
    from fakebench.faces import photo_face
    from fakebench.media import ensure_rgb

    if isinstance(source, np.ndarray):
        photo = ensure_rgb(source)
        return [photo], photo_face(photo, what=what).landmarks[None]
    clip, track = source
    track.require_face(what)
    idx = face_frame_indices(track, frames)
    return list(clip.frames[idx]), track.landmarks[idx].astype(np.float64)


def identity_metrics(clip: Clip, track: FaceTrack, reference: Reference, *, frames: int = 8,
                     facenet_weights: str | os.PathLike | None = None, device: str = "cpu") -> dict:
    """How far the clip's face is from the reference person: a photo (H, W, 3) or a (Clip, FaceTrack)."""
    clip_frames, clip_landmarks = _faces((clip, track), frames, "identity metrics")
    ref_frames, ref_landmarks = _faces(reference, frames, "the identity reference")
    descriptors = face_descriptors(clip_frames, clip_landmarks)
    ref = face_descriptors(ref_frames, ref_landmarks).mean(axis=0)
    distance = np.linalg.norm(descriptors - ref, axis=1)
    out = {
        "identity_distance": float(distance.mean()),
        "identity_distance_max": float(distance.max()),
        "identity_cosine": float(_cosine(descriptors, ref).mean()),
        "identity_same_person": bool(distance.mean() < DLIB_THRESHOLD),
        "identity_threshold": DLIB_THRESHOLD,
        "identity_frames": len(descriptors),
        "identity_reference": "photo" if isinstance(reference, np.ndarray) else "clip",
        "identity_reference_frames": len(ref_frames),
        "identity_model": DLIB_MODEL,
    }
    return out | _facenet_metrics(clip_frames, clip_landmarks, ref_frames, ref_landmarks, facenet_weights,
                                  device)


def _facenet_metrics(frames: list[np.ndarray], landmarks: np.ndarray, ref_frames: list[np.ndarray],
                     ref_landmarks: np.ndarray, weights: str | os.PathLike | None, device: str) -> dict:
    """``facenet_cosine`` when the VGGFace2 weights are found, else why it was skipped."""
    if weights is None and not locate("facenet_vggface2", verify=False).found:
        try:
            find_weight("facenet_vggface2", option="--facenet-weights")
        except WeightsError as e:
            return {"facenet_skipped": e.one_line()}
    model = load_facenet(weights, device=device)
    embeddings = facenet_embeddings(frames, landmarks, model, device)
    reference = facenet_embeddings(ref_frames, ref_landmarks, model, device).mean(axis=0)
    return {"facenet_cosine": float(_cosine(embeddings, reference).mean()), "facenet_model": FACENET_MODEL}


def identity_set_metrics(real: Sequence[tuple[Clip, FaceTrack]], fake: Sequence[tuple[Clip, FaceTrack]], *,
                         frames: int = 8, facenet_weights: str | os.PathLike | None = None) -> dict:
    """Identity of each fake clip against its real counterpart (``real[i]`` <-> ``fake[i]``), averaged."""
    if len(real) != len(fake) or not real:
        raise ConfigError(f"identity set metrics need corresponding real and fake clips, got {len(real)} "
                          f"real and {len(fake)} fake")
    rows = [identity_metrics(f_clip, f_track, (r_clip, r_track), frames=frames,
                             facenet_weights=facenet_weights)
            for (r_clip, r_track), (f_clip, f_track) in zip(real, fake, strict=True)]
    out = {
        "identity_distance_mean": float(np.mean([r["identity_distance"] for r in rows])),
        "identity_cosine_mean": float(np.mean([r["identity_cosine"] for r in rows])),
        "identity_same_person_rate": float(np.mean([r["identity_same_person"] for r in rows])),
        "identity_pairs": len(rows),
        "identity_model": DLIB_MODEL,
    }
    if "facenet_cosine" in rows[0]:
        out |= {"facenet_cosine_mean": float(np.mean([r["facenet_cosine"] for r in rows])),
                "facenet_model": FACENET_MODEL}
    else:
        out["facenet_skipped"] = rows[0]["facenet_skipped"]
    return out


@register_metric("identity", per="clip", reference="required", weights=("dlib_face_recognition", "facenet_vggface2"),
                 keys=("identity_distance", "identity_cosine", "identity_same_person", "facenet_cosine"),
                 description="distance of the clip's face to the reference person (dlib 128-d descriptors, same "
                             "person below 0.6); facenet_cosine when the VGGFace2 weights are found")
def _identity_metric(sample: Sample, ctx: MetricContext) -> dict:
    if ctx.reference is None:
        raise ConfigError("identity needs --reference PHOTO|CLIP (the source photo or the source clip)")
    options = {} if ctx.device is None else {"device": ctx.device}
    return identity_metrics(sample.clip, sample.track, ctx.reference.for_identity(),
                            facenet_weights=ctx.weight("facenet_vggface2"), **options)


@register_metric("identity", per="set", weights=("dlib_face_recognition", "facenet_vggface2"),
                 keys=("identity_distance_mean", "identity_cosine_mean", "identity_same_person_rate"),
                 description="identity of each fake clip against its real counterpart (the i-th real with the "
                             "i-th fake, sorted by name), averaged")
def _identity_set_metric(real: list, fake: list, names: Sequence[str], ctx: MetricContext) -> dict:
    if not (len(real) and len(fake) and isinstance(real[0], tuple) and isinstance(fake[0], tuple)):
        raise ConfigError("set identity compares clips with clips: give folders of clips for --metrics identity")
    return identity_set_metrics(real, fake, facenet_weights=ctx.weight("facenet_vggface2"))
