"""fakebench's NumPy MTCNN against facenet-pytorch's, given the same weights, on real photos; and the analyze
path runs without importing facenet_pytorch (or torch)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fakebench.mtcnn import MTCNN, read_state_dict, resize_area
from fakebench.weights import find_weight


def iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def shrink(image: np.ndarray, side: int) -> np.ndarray:
    from PIL import Image

    h, w = image.shape[:2]
    s = side / max(h, w)
    return np.asarray(Image.fromarray(image).resize((round(w * s), round(h * s)), Image.BILINEAR))


@pytest.fixture(scope="module")
def photos(astronaut: np.ndarray, grace_hopper: np.ndarray) -> dict[str, np.ndarray]:
    from skimage import data

    camera = np.repeat(data.camera()[..., None], 3, axis=2)  # scikit-image's cameraman, grey
    pair = np.concatenate([astronaut[:480, :480], shrink(grace_hopper, 480)[:480, :400]], axis=1)
    return {"astronaut": astronaut, "grace_hopper": grace_hopper, "cameraman": camera, "two_faces": pair,
            "astronaut_176": shrink(astronaut[:320, 40:440], 176), "grace_hopper_mirrored": grace_hopper[:, ::-1]}


@pytest.fixture(scope="module")
def facenet():
    from facenet_pytorch import MTCNN as FacenetMTCNN

    return lambda min_face: FacenetMTCNN(keep_all=True, post_process=False, min_face_size=min_face)


def test_state_dicts_read_without_torch_equal_torch_load() -> None:
    import torch

    folder = find_weight("mtcnn", verify=False)
    for net in ("pnet", "rnet", "onet"):
        ours = read_state_dict(folder / f"{net}.pt")
        theirs = torch.load(folder / f"{net}.pt", weights_only=True)
        assert list(ours) == list(theirs)
        for k, v in theirs.items():
            assert ours[k].dtype == np.float32 and np.array_equal(ours[k], v.numpy()), k


def test_state_dict_reader_refuses_other_globals(tmp_path: Path) -> None:
    import pickle

    from fakebench.errors import WeightsError

    bad = tmp_path / "bad.pt"
    bad.write_bytes(pickle.dumps({"x": subprocess.Popen}))
    with pytest.raises(WeightsError, match="not allowed"):
        read_state_dict(bad)


@pytest.mark.parametrize("min_face", [20, 40])
@pytest.mark.parametrize("name", ["astronaut", "grace_hopper", "cameraman", "two_faces", "astronaut_176",
                                  "grace_hopper_mirrored"])
def test_same_boxes_and_points_as_facenet_pytorch(photos, facenet, name: str, min_face: int) -> None:
    image = photos[name]
    (boxes, probs, points), = MTCNN(min_face_size=min_face).detect([image])
    f_boxes, f_probs, f_points = facenet(min_face).detect([image], landmarks=True)
    f_boxes, f_probs, f_points = f_boxes[0], f_probs[0], f_points[0]
    expected = 2 if name == "two_faces" else 1
    assert len(boxes) == len(f_boxes) == expected
    for b, p, pt, fb, fp, fpt in zip(boxes, probs, points, f_boxes, f_probs, f_points, strict=True):
        assert iou(b, fb) > 0.98
        assert np.abs(pt - fpt).max() < 1.0  # pixels
        assert abs(p - fp) < 1e-3


def test_a_batch_gives_each_image_its_own_faces(photos, facenet) -> None:
    a, b = photos["astronaut"], photos["grace_hopper"][:512, :512]
    ours = MTCNN(min_face_size=40).detect(np.stack([a, b, np.full_like(a, 128)]))
    theirs = facenet(40).detect([a, b, np.full_like(a, 128)], landmarks=True)
    assert [len(o[0]) for o in ours] == [1, 1, 0]
    assert ours[2][0].shape == (0, 4) and ours[2][1].shape == (0,) and ours[2][2].shape == (0, 5, 2)
    for i in range(2):
        assert iou(ours[i][0][0], theirs[0][i][0]) > 0.98
        assert np.abs(ours[i][2] - theirs[2][i]).max() < 1.0


@pytest.mark.parametrize(("size", "out"), [((37, 53), (12, 20)), ((10, 7), (24, 24)), ((144, 176), (87, 106))])
def test_area_resize_is_torchs_area_interpolation(size: tuple[int, int], out: tuple[int, int]) -> None:
    import torch

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (2, *size, 3)).astype(np.float32)
    theirs = torch.nn.functional.interpolate(torch.from_numpy(x).permute(0, 3, 1, 2), size=out, mode="area")
    np.testing.assert_allclose(resize_area(x, *out), theirs.permute(0, 2, 3, 1).numpy(), atol=1e-3)


def test_analyze_imports_neither_facenet_pytorch_nor_torch(tmp_path: Path, astronaut: np.ndarray) -> None:
    from fakebench.media import Clip, write_clip
    from fakebench.synthetic import moving_photo

    clip = tmp_path / "face.mp4"
    frames = moving_photo(astronaut, n_frames=30, size=(144, 176), centre=(225, 130), zoom=144 / 256,
                          seed=3).clip.frames
    write_clip(clip, Clip(frames=frames, fps=25.0, has_audio_track=False))
    code = (
        "import contextlib, io, json, sys\n"
        "from fakebench.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        f"    rc = main(['analyze', {str(clip)!r}, '--json', '--no-cache'])\n"
        "print(json.dumps({'rc': rc, 'summary': json.loads(out.getvalue()),\n"
        "                  'loaded': sorted({'facenet_pytorch', 'torch', 'torchvision'} & set(sys.modules))}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["rc"] == 0 and report["summary"]["face_frames"] == 30
    assert report["loaded"] == [], "the analyze path imports these (seconds of start-up): " + str(report["loaded"])
