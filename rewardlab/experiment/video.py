"""Evaluation videos: one episode of the policy on the unshaped env, as RGB frames.

``log.video: true`` in an experiment file makes the runner build a ``VideoRecorder`` per
seed: at every periodic and the final evaluation it replays the evaluation's first episode
(same seed, same policy mode) on ``rewardlab.make(env.id, render_mode="rgb_array",
**env.kwargs)``, writes ``seed_<s>/videos/<kind>_step_<n>.mp4`` (H.264 through imageio-ffmpeg)
and hands the frames to TensorBoard (``eval/video``, a GIF) and Weights & Biases. The MP4
writer comes with the ``render`` extra (``pip install 'rewardlab[render]'``), which also has
the pygame that Gymnasium's classic-control envs draw with.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.errors import ConfigError

__all__ = ["VideoRecorder", "write_mp4", "MAX_FRAMES"]

MAX_FRAMES = 2_000
"""longest recorded episode in frames; a longer one is cut there (the video says so in its name)"""


def _batch1(obs: Any) -> Any:
    if isinstance(obs, dict):
        return {k: _batch1(v) for k, v in obs.items()}
    return np.asarray(obs)[None]


def _pad(frame: np.ndarray, multiple: int) -> np.ndarray:
    """Pad a frame with black to a multiple of ``multiple`` pixels (H.264's block size)."""
    h, w = frame.shape[:2]
    ph, pw = -h % multiple, -w % multiple
    if not ph and not pw:
        return frame
    return np.pad(frame, ((0, ph), (0, pw), (0, 0)))


def write_mp4(path: Path, frames: np.ndarray, fps: int) -> Path:
    """Write ``frames`` ``(T, H, W, 3)`` uint8 as an H.264 MP4 (padded to 16-pixel blocks)."""
    import imageio_ffmpeg

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    padded = [_pad(np.ascontiguousarray(f, np.uint8), 16) for f in frames]
    h, w = padded[0].shape[:2]
    writer = imageio_ffmpeg.write_frames(str(path), (w, h), fps=fps, macro_block_size=16, ffmpeg_log_level="error")
    writer.send(None)  # start the encoder
    for f in padded:
        writer.send(f)
    writer.close()
    return path


class VideoRecorder:
    """Records one episode of a policy on the unshaped env ``env_id`` (``render_mode="rgb_array"``).

    Built when the run starts, so an env that cannot draw frames, or a missing ``render`` extra,
    stops the run with a ``ConfigError`` before any training."""

    def __init__(self, env_id: str, env_kwargs: dict[str, Any], out_dir: Path, fps: int):
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError as e:
            raise ConfigError(f"log.video needs the render extra ({e.name} is missing): "
                              "pip install 'rewardlab[render]', or set log.video=false") from e
        import os

        from rewardlab.envs import make

        # Headless: envs drawn with pygame (CartPole, ...) need no display, and no sound card.
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
        if "render_mode" in env_kwargs:
            raise ConfigError(f"log.video: env.kwargs.render_mode={env_kwargs['render_mode']!r} is set; the video "
                              "env is made with render_mode='rgb_array' (remove it from env.kwargs)")
        self.env_id, self.out_dir, self.fps = env_id, Path(out_dir), fps
        try:
            self.env = make(env_id, render_mode="rgb_array", **env_kwargs)
            self.env.reset(seed=0)
            frame = self.env.render()
        except ConfigError:
            raise
        except Exception as e:  # noqa: BLE001 - whatever the env raised, said in one line
            raise ConfigError(f"log.video: env {env_id!r} cannot render rgb_array frames "
                              f"({type(e).__name__}: {e}); set log.video=false") from e
        if not (isinstance(frame, np.ndarray) and frame.ndim == 3 and frame.shape[2] == 3):
            raise ConfigError(f"log.video: env {env_id!r} rendered {type(frame).__name__} "
                              f"{getattr(frame, 'shape', '')}, not an RGB frame (H, W, 3); set log.video=false")

    def record(self, act: Callable[[Any, bool], np.ndarray], *, seed: int, deterministic: bool) -> np.ndarray:
        """Frames ``(T, H, W, 3)`` of one episode of ``act`` (batched obs -> batched actions), first
        frame after reset, last after the final step; at most ``MAX_FRAMES``."""
        obs, _ = self.env.reset(seed=seed)
        frames = [np.array(self.env.render(), np.uint8)]
        while len(frames) < MAX_FRAMES:
            action = np.asarray(act(_batch1(obs), deterministic))[0]
            obs, _, term, trunc, _ = self.env.step(action)
            frames.append(np.array(self.env.render(), np.uint8))
            if term or trunc:
                break
        return np.stack(frames)

    def write(self, name: str, frames: np.ndarray) -> Path:
        return write_mp4(self.out_dir / f"{name}.mp4", frames, self.fps)

    def close(self) -> None:
        self.env.close()


def tensorboard_video(tag: str, frames: np.ndarray, fps: int, max_side: int = 320):
    """A TensorBoard image summary holding ``frames`` as an animated GIF (what ``add_video``
    writes), strided down to at most ``max_side`` pixels. Encoded with Pillow: torch's
    ``add_video`` needs ``moviepy.editor``, which moviepy 2 no longer has (it prints a message
    and writes nothing)."""
    import io

    from PIL import Image
    from tensorboard.compat.proto.summary_pb2 import Summary

    stride = max(1, int(np.ceil(max(frames.shape[1:3]) / max_side)))
    small = np.ascontiguousarray(frames[:, ::stride, ::stride])
    images = [Image.fromarray(f) for f in small]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=max(1, round(1000 / fps)),
                   loop=0)
    _, h, w, c = small.shape
    image = Summary.Image(height=h, width=w, colorspace=c, encoded_image_string=buf.getvalue())
    return Summary(value=[Summary.Value(tag=tag, image=image)])
