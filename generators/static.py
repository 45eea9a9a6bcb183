"""The photo held still (optionally with tiny head motion) with the audio attached: no lip movement at all."""

from __future__ import annotations

import numpy as np

from fakebench.faces import eye_aspect_ratio, mouth_opening, photo_face
from fakebench.generators.base import (
    FPS_OPTION,
    MAX_SIDE_OPTION,
    GeneratedClip,
    GeneratorBase,
    n_output_frames,
    register,
    size_photo,
)
from fakebench.media import Clip, check_speech_audio, ensure_rgb, to_mono
from fakebench.registry import Option, check_seed
from fakebench.synthetic import head_motion, moving_photo


@register("static")
class StaticGenerator(GeneratorBase):
    description = "the photo held still (optionally tiny head motion) with the audio attached: no lip movement"
    takes = "photo"
    options = (FPS_OPTION, MAX_SIDE_OPTION,
               Option("head_motion", bool, False, help="add tiny smooth head motion"))
    min_audio_s = 0.1
    preload = ("fakebench.faces", "fakebench.synthetic")
    default_rank = 30

    def __init__(self, **options) -> None:
        o = self.check_options(options)
        self.fps = float(o["fps"])
        self.head_motion = o["head_motion"]
        self.max_side = o["max_side"]

    def generate(self, image: np.ndarray, audio: np.ndarray, sample_rate: int, *, seed: int = 0) -> GeneratedClip:
        photo = ensure_rgb(image)
        audio = to_mono(audio)
        check_speech_audio(audio, sample_rate, fps=self.fps, what="the driving audio")
        self.check_audio_length(audio.size, sample_rate, "the driving audio")
        seed = check_seed(seed)
        sized = size_photo(photo, self.max_side)  # shrunk first: a phone photo is never worked on at 12 MP
        face = photo_face(sized.analysis)
        n = n_output_frames(audio.size, sample_rate, self.fps)
        out_w, out_h = sized.output_size
        zoom = out_w / sized.analysis_size[0]  # analysis copy -> output
        shift_px = 1.5 * out_w / sized.original_size[0]  # 1.5 pixels of the photo as given
        motion = (head_motion(n, self.fps, seed=seed, shift_px=shift_px, scale=0.004, rotation_deg=0.5)
                  if self.head_motion else np.zeros((n, 4)))
        if self.head_motion:
            centre = tuple(face.landmarks.mean(0))
            # moving_photo puts `centre` at the middle of the frame; this offset keeps the face where it was.
            offset = np.array([centre[0] * zoom - (out_w - 1) / 2, centre[1] * zoom - (out_h - 1) / 2, 0, 0])
            clip = moving_photo(sized.analysis, n_frames=n, size=(out_h, out_w), fps=self.fps, centre=centre,
                                zoom=zoom, motion=motion + offset, audio=audio, sample_rate=sample_rate).clip
        else:
            still = sized.output()
            clip = Clip(frames=np.broadcast_to(still, (n, *still.shape)).copy(), fps=self.fps, audio=audio,
                        sample_rate=sample_rate)
        truth = {
            "generator": self.name, "seed": seed, "fps": self.fps, "n_frames": n,
            "mouth_opening": [float(mouth_opening(face.landmarks))] * n,
            "blinks": [], "blink_rate_per_min": 0.0,
            "eye_aspect_ratio": float(eye_aspect_ratio(face.landmarks)),
            "head_pose": {"columns": ["dx", "dy", "scale", "roll_deg"],
                          "values": np.round(motion, 4)},
            "faces_in_photo": face.n_faces,
        }
        return GeneratedClip(clip=clip, ground_truth=truth)
