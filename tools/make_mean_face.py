"""Build fakebench/data/mean_face_68.npy: the 68-point mean face in dlib-detector-box coordinates.

The template is the average of dlib's 68 landmarks on the real photos that dependencies ship and
their mirror images, each normalised by dlib's own HOG face box, so the box [0, 1]^2 in template
coordinates is where dlib's landmark model expects a face. Run once; the result is committed.
"""

from __future__ import annotations

from pathlib import Path

import dlib
import numpy as np

from fakebench.assets import load_photo, photo_names
from fakebench.faces import MIRROR_68, landmark_model_path

OUT = Path(__file__).resolve().parents[1] / "fakebench" / "data" / "mean_face_68.npy"


def main() -> None:
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(landmark_model_path()))
    shapes = []
    for name in photo_names():
        for mirrored in (False, True):
            img = load_photo(name)
            if mirrored:
                img = np.ascontiguousarray(img[:, ::-1])
            box = max(detector(img, 1), key=lambda r: r.area())
            pts = np.array([[p.x, p.y] for p in predictor(img, box).parts()], np.float64)
            norm = (pts - [box.left(), box.top()]) / [box.width(), box.height()]
            if mirrored:
                norm = norm[MIRROR_68]
                norm[:, 0] = 1.0 - norm[:, 0] - 1.0 / box.width()
            shapes.append(norm)
    mean = np.mean(shapes, axis=0).astype(np.float32)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.save(OUT, mean)
    print(f"wrote {OUT} from {len(shapes)} shapes; spread {np.std(shapes, axis=0).mean():.4f}")


if __name__ == "__main__":
    main()
