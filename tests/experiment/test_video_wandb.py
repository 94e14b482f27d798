"""``log.video`` (MP4s of evaluation episodes + TensorBoard's eval/video) and ``log.wandb``
(Weights & Biases in offline mode, no network) in the runner, and their config errors."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from test_config_and_cli import BASE

from rewardlab.config import parse_config
from rewardlab.errors import ConfigError
from rewardlab.experiment.runner import run_experiment


def _cfg(**log):
    data = copy.deepcopy(BASE)
    data["env"]["kwargs"] = {"max_episode_steps": 20}  # short episodes: short videos
    data["log"] = {**data["log"], **log}
    return parse_config(data)


def test_video_records_evaluation_episodes_as_mp4_and_tensorboard_video(tmp_path):
    import imageio.v3 as iio
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    seed_dir = run_experiment(_cfg(video=True, tensorboard=True), out=tmp_path).run_dir / "seed_0"
    names = sorted(p.name for p in (seed_dir / "videos").iterdir())
    # periodic evaluations every 128 steps (at 128 and 256) and the final one
    assert names == ["eval_step_128.mp4", "eval_step_256.mp4", "final_step_256.mp4"]
    frames = iio.imread(seed_dir / "videos" / "final_step_256.mp4")
    # CartPole's 400x600 frames, padded to 16-pixel blocks; reset frame + one per step (<= 20 steps)
    assert frames.shape[1:] == (400, 608, 3) and 2 <= len(frames) <= 21
    assert frames.std() > 0  # a picture, not a blank
    events = EventAccumulator(str(seed_dir), size_guidance={"images": 0})
    events.Reload()
    assert "eval/video" in events.Tags()["images"]
    assert [e.step for e in events.Images("eval/video")] == [128, 256, 256]


def test_wandb_offline_writes_the_run_without_network(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = _cfg(wandb={"project": "rewardlab-test", "mode": "offline", "tags": ["ci"]})
    seed_dir = run_experiment(cfg, out=tmp_path).run_dir / "seed_0"
    (record,) = seed_dir.glob("wandb/offline-run-*/run-*.wandb")
    data = record.read_bytes()
    # the run holds the runner's metrics (history keys are stored as plain strings)
    for key in (b"charts/true_return", b"eval/true_return", b"losses/value_loss"):
        assert key in data, key


@pytest.mark.parametrize(("log", "match"), [
    ({"wandb": {"project": "p", "mode": "cloud"}}, r"log\.wandb\.mode"),
    ({"wandb": {"mode": "offline"}}, r"log\.wandb\.project"),
    ({"wandb": {"project": "p", "api_key": "x"}}, r"log\.wandb\.api_key"),
    ({"video": "maybe"}, r"log\.video"),
    ({"video_fps": 0}, r"log\.video_fps"),
])
def test_log_section_errors_name_the_field(log, match):
    with pytest.raises(ConfigError, match=match):
        _cfg(**log)


def test_video_refuses_a_render_mode_in_env_kwargs_before_training(tmp_path):
    data = copy.deepcopy(BASE)
    data["env"]["kwargs"] = {"render_mode": "human"}
    data["log"] = {**data["log"], "video": True}
    with pytest.raises(ConfigError, match="render_mode='rgb_array'"):
        run_experiment(parse_config(data), out=tmp_path)
    (run,) = tmp_path.iterdir()
    assert not list(run.glob("seed_0/metrics.jsonl"))  # stopped before any training


def test_video_recorder_on_minihack(tmp_path):
    pytest.importorskip("minihack")
    import imageio.v3 as iio

    from rewardlab.experiment.video import VideoRecorder

    rec = VideoRecorder("minihack/Room-5x5", {"max_episode_steps": 10}, tmp_path, fps=10)
    rng = np.random.default_rng(0)
    frames = rec.record(lambda obs, det: rng.integers(0, 8, size=len(obs)), seed=3, deterministic=True)
    assert frames.shape[1:] == (336, 1264, 3) and 2 <= len(frames) <= 11
    written = iio.imread(rec.write("final_step_0", frames))
    assert written.shape == frames.shape  # 336x1264 is already a multiple of 16: no padding
    assert np.unique(written.reshape(-1, 3), axis=0).shape[0] > 2  # tiles, not a flat colour
    rec.close()
