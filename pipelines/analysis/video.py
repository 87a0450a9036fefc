"""Video panels and writers: frames + per-head rows + a caption, as MP4 (ffmpeg) and GIF.

MP4s are H.264 (yuv420p) through PyAV (the FFmpeg libraries its wheel bundles, also used to
read Kinetics clips); GIFs through Pillow.
"""
from __future__ import annotations

import os
from typing import Callable, Dict, Optional, Sequence

import numpy as np

from pipelines.analysis.progress import Progress

CAPTION_HEIGHT = 14
LABEL_COLOUR = (255, 255, 0)
MIN_READABLE_HEIGHT = 160  # small frames (e.g. 40x40 MiniGrid) are upscaled to at least this


def readable_scale(height: int, scale: int = 1) -> int:
    """The integer upscaling that makes an image ``height`` pixels high readable: at least
    ``scale``, and enough to reach :data:`MIN_READABLE_HEIGHT` (nearest-neighbour, so pixels
    stay crisp and attention cells keep their edges)."""
    return max(int(scale), -(-MIN_READABLE_HEIGHT // max(int(height), 1)))


def upscale(image: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour integer upscaling of ``[..., H, W, C]``."""
    return image if scale <= 1 else image.repeat(scale, axis=-3).repeat(scale, axis=-2)


def _draw_text(image: np.ndarray, xy, text: str, colour=(255, 255, 255)) -> np.ndarray:
    from PIL import Image, ImageDraw
    im = Image.fromarray(image)
    ImageDraw.Draw(im).text(xy, text, fill=colour)
    return np.asarray(im)


def panel(frame: np.ndarray, rows: np.ndarray, caption: str = "",
          row_labels: Optional[Sequence[str]] = None, scale: int = 1) -> np.ndarray:
    """One video frame: a caption strip, the ``frame [H, W, 3]``, then one row per
    ``rows [N, H, W, 3]`` (labelled), all upscaled by the integer ``scale`` — more if the frame
    is small (:func:`readable_scale`). uint8."""
    frame, rows = np.asarray(frame, np.uint8), np.asarray(rows, np.uint8)
    if rows.shape[1:] != frame.shape:
        raise ValueError(f"rows {rows.shape} must be [N, {', '.join(map(str, frame.shape))}] like the frame")
    stack = upscale(np.concatenate([frame[None], rows], 0), readable_scale(frame.shape[0], scale))
    if row_labels:
        stack = np.stack([stack[0]] + [_draw_text(r, (2, 1), lbl, LABEL_COLOUR)
                                       for r, lbl in zip(stack[1:], row_labels)])
    body = stack.reshape(-1, *stack.shape[2:])
    strip = np.zeros((CAPTION_HEIGHT, body.shape[1], 3), np.uint8)
    if caption:
        strip = _draw_text(strip, (2, 1), caption)
    return np.concatenate([strip, body], 0)


def caption(rollout, t: int) -> str:
    """Step ``t`` of a rollout in one line: step, action, value, reward."""
    return (f"t={t} a={rollout.action_name(int(rollout.actions[t]))} "
            f"v={rollout.values[t]:.3f} r={rollout.rewards[t]:g}")


def rollout_panels(rollout, rows_of: Callable[[int], np.ndarray], labels: Sequence[str], scale: int,
                   times=None, label: str = "panels", progress: bool = False) -> np.ndarray:
    """Video frames ``[T, ...]``, one :func:`panel` per step of ``times`` (default: every step):
    the step's :func:`caption`, its frame, then the rows ``rows_of(t)`` labelled ``labels``."""
    times = list(range(len(rollout)) if times is None else times)
    bar = Progress(label, len(times), enabled=progress)
    out = []
    for i, t in enumerate(times):
        out.append(panel(rollout.frames[t], rows_of(t), caption(rollout, t), labels, scale))
        bar.update(i + 1)
    bar.close()
    return np.stack(out)


def _even(frames: np.ndarray) -> np.ndarray:
    """Pads ``[T, H, W, 3]`` with black to even H and W (needed by yuv420p)."""
    h, w = frames.shape[1:3]
    return np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)))


def write_mp4(path: str, frames: np.ndarray, fps: int = 15) -> str:
    """H.264 MP4 of uint8 ``frames [T, H, W, 3]``; written to a temp name, then renamed."""
    import av
    frames = _even(np.asarray(frames, np.uint8))
    tmp = path + ".tmp.mp4"
    with av.open(tmp, mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=int(fps))
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        for f in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        container.mux(stream.encode())   # flush the encoder
    os.replace(tmp, path)
    return path


def write_gif(path: str, frames: np.ndarray, fps: int = 15, max_frames: Optional[int] = None) -> str:
    """Looping GIF of ``frames [T, H, W, 3]`` (evenly subsampled to ``max_frames`` if longer)."""
    from PIL import Image
    frames = np.asarray(frames, np.uint8)
    step = 1
    if max_frames and len(frames) > max_frames:
        step = int(np.ceil(len(frames) / max_frames))
        frames = frames[::step]
    images = [Image.fromarray(f) for f in frames]
    tmp = path + ".tmp.gif"
    images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                   duration=int(round(1000.0 * step / fps)), loop=0)
    os.replace(tmp, path)
    return path


def write_video_pair(out_dir: str, name: str, frames: np.ndarray, fps: int,
                     gif_max_frames: Optional[int]) -> Dict[str, str]:
    """``name``.mp4 and ``name``.gif in ``out_dir``: ``{"mp4": path, "gif": path}``."""
    return {"mp4": write_mp4(os.path.join(out_dir, name + ".mp4"), frames, fps),
            "gif": write_gif(os.path.join(out_dir, name + ".gif"), frames, fps, gif_max_frames)}


def read_video(path: str) -> np.ndarray:
    """All frames of a video/GIF as uint8 ``[T, H, W, 3]`` (for tests and notebooks)."""
    if path.endswith(".gif"):
        from PIL import Image, ImageSequence
        with Image.open(path) as im:
            return np.stack([np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)])
    import av
    with av.open(path) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def labelled_row(images: Sequence[np.ndarray], labels: Sequence[str], gap: int = 4) -> np.ndarray:
    """Images of equal height side by side with a caption strip each: uint8 ``[CAPTION + H, ΣW, 3]``
    (small images upscaled to a readable height, :func:`readable_scale`)."""
    cols = []
    for im, lbl in zip(images, labels):
        im = np.asarray(im, np.uint8)
        im = upscale(im, readable_scale(im.shape[0]))
        strip = _draw_text(np.zeros((CAPTION_HEIGHT, im.shape[1], 3), np.uint8), (2, 1), lbl)
        cols.append(np.concatenate([strip, im], 0))
        cols.append(np.zeros((CAPTION_HEIGHT + im.shape[0], gap, 3), np.uint8))
    return np.concatenate(cols[:-1], 1)


def write_png(path: str, image: np.ndarray) -> str:
    from PIL import Image
    Image.fromarray(np.asarray(image, np.uint8)).save(path)
    return path
