"""``run_derl``: the DERL meta-loop — rounds × K reward programs, each trained by the real runner.

Each round the meta-optimizer proposes K programs; each valid one becomes the reward of an
ordinary ``run_experiment`` (the experiment's env/agent/train/eval, reward =
``derl_program``), run in a worker process (spawn) with the experiment's fixed step budget.
A candidate's score is its final evaluation on the *unshaped* env (success rate, mean over
``train.seeds``; the true return for envs without a success flag); invalid programs and
crashed trainings score ``derl.failure_score`` (default −1, the DERL reference's score of an invalid
program) with the reason logged. After the K scores
the optimizer is updated (GRPO, evolution's population, the LLM's history).

With an agent that trains many runs in one program (``jax_ppo`` on a ``gymnax/``/``minigrid/``
env) the round's valid candidates are not trained one by one: each program becomes a reward
variant of one JAX ``derl_program`` term (programs are token arrays, ``rewardlab.jax.program``),
and all K programs × ``train.seeds`` train in one compiled program (``train_batch``), in
``inner/r000_batch/<name>__<timestamp>/c01/`` etc.

DERL run directory (never reused)::

    <derl.dir or log.dir/derl>/<name>__<timestamp>/
      config.yaml              resolved experiment (with its derl: section)
      derl.json                marker: this is a DERL run (``rewardlab run --resume DIR`` continues it)
      candidates.jsonl         one line per scored candidate: round, index, program, status, score,
                               per-seed score, eval curve, inner run directory, reason of a failure
      rounds/r000/proposals.json   the round's K proposals (written before any training starts)
      rounds/r000/state.pt     optimizer state after the round's update
      rounds/r000/round.json   round statistics; its presence marks the round finished
      inner/r000_c01/<name>__<timestamp>/   the candidate's ordinary run directory
      summary.json             best program, per-round statistics

Resume: finished rounds are skipped (the optimizer state of the last one is loaded); in the
interrupted round the stored proposals are reused, candidates already in candidates.jsonl
are kept, and the others run again — an inner run that had started resumes its own run
directory — so no candidate is lost or duplicated.
"""

from __future__ import annotations

import copy
import json
import multiprocessing as mp
import os
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from rewardlab.errors import ConfigError, RewardLabError, RunDirError

__all__ = ["run_derl", "DerlSummary", "is_derl_dir", "read_candidates", "train_candidate", "MARKER"]

MARKER, CANDIDATES, SUMMARY = "derl.json", "candidates.jsonl", "summary.json"


def is_derl_dir(path: Path) -> bool:
    """True if ``path`` is a DERL run directory (written by ``run_derl``)."""
    return (Path(path) / MARKER).is_file()


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def _new_dir(parent: Path, name: str) -> Path:
    parent.mkdir(parents=True, exist_ok=True)
    base = parent / f"{name}__{time.strftime('%Y%m%d-%H%M%S')}"
    for i in range(1000):
        candidate = base if i == 0 else base.with_name(f"{base.name}_{i}")
        try:
            candidate.mkdir()  # atomic: never take over another run's directory
            return candidate
        except FileExistsError:
            continue
    raise RewardLabError(f"could not create a fresh DERL directory under {parent}")


def read_candidates(run_dir: Path) -> list[dict[str, Any]]:
    """The scored candidates of a DERL run, in the order they finished (one per round/index)."""
    path = Path(run_dir) / CANDIDATES
    if not path.is_file():
        return []
    rows, seen = [], set()
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a crash mid-write; that candidate runs again
        key = (row["round"], row["index"])
        if key not in seen:
            seen.add(key)
            rows.append(row)
    return rows


def _repair_jsonl(path: Path) -> None:
    """Drop a partial last line (a crash mid-append) so new lines start on a fresh line."""
    if path.is_file():
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            path.write_bytes(data[: data.rfind(b"\n") + 1])


# -- the inner loop (runs in a worker process) -----------------------------------------------

def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)  # K trainings share the cores; no thread oversubscription


def _score(summary: dict[str, Any]) -> tuple[float, str]:
    if summary.get("success_rate_mean") is not None:
        return float(summary["success_rate_mean"]), "success_rate"
    return float(summary["true_return_mean"]), "true_return"


def _curve(run_dir: Path) -> dict[str, list[list[float]]]:
    from rewardlab.core import keys
    from rewardlab.experiment.runner import read_metrics, seed_dirs

    out = {}
    for sd in seed_dirs(run_dir):
        pts = []
        for row in read_metrics(sd):
            if row.get("kind") in ("eval", "final"):
                pts.append([row["step"], row.get(keys.EVAL_SUCCESS_RATE), row.get(keys.EVAL_TRUE_RETURN)])
        out[sd.name] = pts
    return out


def _validate(cfg: Any, run_dir: Path, validation: dict[str, Any]) -> list[dict[str, Any]]:
    """Reload each seed's final checkpoint and evaluate it on the validation env (unshaped)."""
    from rewardlab.agents import AGENTS
    from rewardlab.envs import make_vec
    from rewardlab.experiment.evaluate import evaluate
    from rewardlab.experiment.runner import CKPT_DIR

    out = []
    kwargs = {**cfg.env.kwargs, **validation.get("env_kwargs", {})}
    for seed in cfg.train.seeds:
        venv = make_vec(cfg.env.id, cfg.eval.n_envs, **kwargs)
        try:
            agent = AGENTS.get(cfg.agent.name)(venv, gamma=cfg.agent.gamma, seed=seed, params=dict(cfg.agent.params))
            agent.load(run_dir / f"seed_{seed}" / CKPT_DIR)
            res = evaluate(agent.act, venv, validation.get("episodes", 50), seed=20_000 + seed,
                           deterministic=cfg.eval.deterministic)
        finally:
            venv.close()
        row = {"seed": seed, "success_rate": res.success_rate, "true_return_mean": res.mean_return,
               "episodes": int(len(res.returns)), "env_kwargs": kwargs}
        _write_json(run_dir / f"seed_{seed}" / "validation.json", row)
        out.append(row)
    return out


def train_candidate(base: dict[str, Any], program: str, primitives: dict[str, Any], name: str,
                    parent: str, validation: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train one candidate program with the ordinary runner; returns its score and curve.

    ``base`` is the experiment's resolved config without ``derl``; its reward is replaced by
    ``derl_program``. If ``parent`` already holds a run directory of this candidate (a crash),
    that run is resumed instead of started again. With ``validation`` (``{env_kwargs, episodes}``)
    the score comes from reloading the trained agent and evaluating it on the validation env.
    """
    from rewardlab.config import parse_config
    from rewardlab.experiment.runner import FINAL_FILE, run_experiment

    t0 = time.time()
    data = copy.deepcopy(base)
    data["name"] = name
    data["reward"] = {"terms": [{"name": "derl_program", "params": {"program": program, "primitives": primitives}}]}
    data.setdefault("log", {})["dir"] = parent
    data.pop("derl", None)
    data.pop("sweep", None)
    existing = sorted(p for p in Path(parent).glob(f"{name}__*") if (p / "config.yaml").is_file())
    row: dict[str, Any] = {"program": program}
    try:
        cfg = parse_config(data, f"candidate {name}")
        if existing and any(existing[-1].glob("seed_*")):
            summary = run_experiment(resume=existing[-1])
        else:
            summary = run_experiment(cfg)
        result = summary.as_dict()
        score, metric = _score(result)
        per_seed = [s.final["success_rate"] for s in summary.seeds]
        if metric == "true_return":  # no success flag: report the per-seed returns the score averages
            per_seed = [s.final["true_return_mean"] for s in summary.seeds]
        if validation is not None:
            row["train_env_score"], row["train_env_score_per_seed"] = score, per_seed
            val = _validate(cfg, summary.run_dir, validation)
            succ = [v["success_rate"] for v in val if v["success_rate"] is not None]
            per_seed = [v["success_rate"] for v in val] if succ else [v["true_return_mean"] for v in val]
            score, metric = ((float(np.mean(succ)), "validation_success_rate") if succ else
                             (float(np.mean([v["true_return_mean"] for v in val])), "validation_true_return"))
            result["true_return_mean"] = float(np.mean([v["true_return_mean"] for v in val]))
        row.update(status="ok", score=score, score_metric=metric, run_dir=str(summary.run_dir),
                   score_per_seed=per_seed,
                   true_return=result["true_return_mean"], curve=_curve(summary.run_dir),
                   resumed=bool(existing), seeds_done=[s.seed for s in summary.seeds
                                                       if (s.run_dir / FINAL_FILE).is_file()])
    except Exception as e:  # a crashing program/training is a failed candidate, not a failed search
        run_dirs = sorted(Path(parent).glob(f"{name}__*"))
        row.update(status="failed", error=f"{type(e).__name__}: {e}",
                   run_dir=str(run_dirs[-1]) if run_dirs else None)
    row["wall_time_s"] = round(time.time() - t0, 1)
    return row


def train_batch(base: dict[str, Any], programs: dict[int, str], primitives: dict[str, Any], name: str,
                parent: str, grammar: Any) -> dict[int, dict[str, Any]]:
    """Train several candidates in one compiled program (an agent with ``batched = True``,
    ``jax_ppo``): each program is one reward variant of a JAX ``derl_program`` term, all of them ×
    ``train.seeds`` side by side. Returns one candidate row per index, as ``train_candidate`` does.

    An interrupted batch is resumed from its run directory in ``parent``; a crash fails every
    candidate of the batch with the error.
    """
    from rewardlab.config import parse_config
    from rewardlab.experiment.runner import run_experiment, seed_dirs

    t0 = time.time()
    first = next(iter(programs.values()))
    data = copy.deepcopy(base)
    data["name"] = name
    term = {"name": "derl_program", "as": "program",
            "params": {"program": first, "primitives": primitives, "max_tokens": grammar.max_tokens,
                       "max_depth": grammar.max_depth}}
    data["reward"] = {"terms": [term], "variants": {f"c{i:02d}": {"program.program": text}
                                                   for i, text in programs.items()}}
    data.setdefault("log", {})["dir"] = parent
    existing = sorted(p for p in Path(parent).glob(f"{name}__*") if (p / "config.yaml").is_file())
    rows: dict[int, dict[str, Any]] = {}
    try:
        cfg = parse_config(data, f"candidates {name}")
        run = (run_experiment(resume=existing[-1]) if existing and any(existing[-1].glob("*/seed_*"))
               else run_experiment(cfg)).run_dir
        wall = round(time.time() - t0, 1)
        for i, text in programs.items():
            vdir = run / f"c{i:02d}"
            result = json.loads((vdir / "summary.json").read_text())
            score, metric = _score(result)
            key = "success_rate" if metric == "success_rate" else "true_return_mean"
            per_seed = [seed[key] for seed in result["seeds"].values()]  # labelled "<variant>/<seed>"
            rows[i] = {"program": text, "status": "ok", "score": score, "score_metric": metric,
                       "run_dir": str(vdir), "score_per_seed": per_seed, "true_return": result["true_return_mean"],
                       "curve": _curve(vdir), "resumed": bool(existing), "batched": len(programs),
                       "seeds_done": [int(d.name.removeprefix("seed_")) for d in seed_dirs(vdir)], "wall_time_s": wall}
    except Exception as e:  # a crashing batch fails its candidates, not the search
        runs = sorted(Path(parent).glob(f"{name}__*"))
        for i, text in programs.items():
            rows[i] = {"program": text, "status": "failed", "error": f"{type(e).__name__}: {e}",
                       "run_dir": str(runs[-1]) if runs else None, "wall_time_s": round(time.time() - t0, 1)}
    return rows


# -- the meta-loop ---------------------------------------------------------------------------

@dataclass
class DerlSummary:
    run_dir: Path
    method: str
    candidates: list[dict[str, Any]] = field(default_factory=list)
    rounds: list[dict[str, Any]] = field(default_factory=list)

    @property
    def best(self) -> dict[str, Any] | None:
        ok = [c for c in self.candidates if c["status"] == "ok"]
        return max(ok, key=lambda c: (c["score"], -c["round"], -c["index"])) if ok else None

    def as_dict(self) -> dict[str, Any]:
        best = self.best
        return {
            "method": self.method,
            "candidates": len(self.candidates),
            "failed": sum(c["status"] != "ok" for c in self.candidates),
            "best": None if best is None else {k: best[k] for k in ("round", "index", "program", "score",
                                                                    "score_metric", "run_dir")},
            "rounds": self.rounds,
        }


def _check_batched(cfg: Any) -> bool:
    """Whether the candidates train in one program (``jax_ppo``): then every primitive needs a JAX
    version and ``validation`` (which reloads torch checkpoints) is not available."""
    from rewardlab.core.registry import manifest_entries
    from rewardlab.experiment.batched import is_batched

    if not is_batched(cfg.agent.name):
        return False
    have = manifest_entries("JAX_RL_TERMS")
    missing = sorted(n for n, spec in cfg.derl.primitive_specs().items() if spec["name"] not in have)
    if missing:
        raise ConfigError(f"derl.primitives {missing}: agent {cfg.agent.name!r} trains the candidates in one JAX "
                          f"program and these terms have no JAX version; terms with one: {', '.join(sorted(have))}")
    if cfg.derl.validation is not None:
        raise ConfigError(f"derl.validation is not available with agent {cfg.agent.name!r} (it reloads torch "
                          "checkpoints); hold out evaluation seeds instead")
    return True


def _base_config(raw: dict[str, Any]) -> dict[str, Any]:
    base = copy.deepcopy(raw)
    base.pop("derl", None)
    base.pop("sweep", None)
    return base


def run_derl(cfg: Any = None, *, out: Path | None = None, resume: Path | None = None,
             on_event: Callable[[str, dict[str, Any]], None] | None = None) -> DerlSummary:
    """Run (or resume) the DERL meta-loop of an experiment with a ``derl:`` section.

    ``on_event(kind, data)`` reports progress: ``"round"`` (a round starts, with its proposals),
    ``"candidate"`` (a candidate finished, its log row) and ``"update"`` (round statistics).
    """
    from rewardlab.config import dump_config, parse_config
    from rewardlab.derl.search import Proposal, make_search

    if resume is not None:
        run_dir = Path(resume)
        if not is_derl_dir(run_dir):
            raise RunDirError(f"{run_dir} is not a DERL run directory (no {MARKER})")
        cfg = parse_config(yaml.safe_load((run_dir / "config.yaml").read_text()), str(run_dir / "config.yaml"))
    else:
        if cfg is None or cfg.derl is None:
            raise ConfigError("run_derl needs an experiment with a derl: section")
        parent = Path(out) if out else Path(cfg.derl.dir or Path(cfg.log.dir) / "derl")
        run_dir = _new_dir(parent, cfg.name)
        (run_dir / "config.yaml").write_text(dump_config(cfg))
        _write_json(run_dir / MARKER, {"kind": "derl", "method": cfg.derl.method, "version": 1})
    derl = cfg.derl
    emit = on_event or (lambda kind, data: None)
    raw = cfg.model_dump(by_alias=True, exclude_none=True)
    base = _base_config(raw)
    prims = derl.primitive_specs()
    search = make_search(derl)
    grammar = derl.grammar()

    done_rounds = [r for r in range(derl.rounds) if (run_dir / "rounds" / f"r{r:03d}" / "round.json").is_file()]
    first = 0
    if done_rounds:
        last = max(done_rounds)
        search.load(run_dir / "rounds" / f"r{last:03d}" / "state.pt")
        first = last + 1
    _repair_jsonl(run_dir / CANDIDATES)
    summary = DerlSummary(run_dir, derl.method)
    summary.rounds = [json.loads((run_dir / "rounds" / f"r{r:03d}" / "round.json").read_text()) for r in done_rounds]

    batched = _check_batched(cfg)
    pool = None
    if derl.workers > 0 and not batched:
        pool = ProcessPoolExecutor(derl.workers, mp_context=mp.get_context("spawn"), initializer=_init_worker)
    try:
        for r in range(first, derl.rounds):
            rdir = run_dir / "rounds" / f"r{r:03d}"
            rdir.mkdir(parents=True, exist_ok=True)
            prop_file = rdir / "proposals.json"
            if prop_file.is_file():
                proposals = [Proposal(**p) for p in json.loads(prop_file.read_text())]
            else:
                proposals = search.propose(derl.candidates)
                for p in proposals:  # programs from outside the grammar's generator are re-checked here
                    if p.valid:
                        try:
                            grammar.check(p.text)
                        except RewardLabError as e:
                            p.error = str(e)
                _write_json(prop_file, [p.as_dict() for p in proposals])
            emit("round", {"round": r, "proposals": [p.as_dict() for p in proposals]})
            rows = {c["index"]: c for c in read_candidates(run_dir) if c["round"] == r}
            _run_round(r, proposals, rows, run_dir, base, prims, derl, pool, emit, batched)
            scores = [rows[i]["score"] for i in range(len(proposals))]
            stats = search.observe(proposals, scores)
            search.save(rdir / "state.pt")
            ok = [rows[i] for i in range(len(proposals)) if rows[i]["status"] == "ok"]
            rstats = {"round": r, "mean_score": float(np.mean(scores)), "max_score": float(np.max(scores)),
                      "failed": len(proposals) - len(ok),
                      "best_program": max(ok, key=lambda c: c["score"])["program"] if ok else None, **stats}
            _write_json(rdir / "round.json", rstats)
            summary.rounds.append(rstats)
            emit("update", rstats)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    summary.candidates = sorted(read_candidates(run_dir), key=lambda c: (c["round"], c["index"]))
    _write_json(run_dir / SUMMARY, summary.as_dict())
    return summary


def _run_round(r: int, proposals: list, rows: dict[int, dict[str, Any]], run_dir: Path, base: dict[str, Any],
               prims: dict[str, Any], derl: Any, pool: ProcessPoolExecutor | None, emit: Callable,
               batched: bool = False) -> None:
    log = (run_dir / CANDIDATES).open("a")

    def record(i: int, result: dict[str, Any]) -> None:
        row = {"round": r, "index": i, "method": derl.method, **result}
        if row["status"] != "ok":
            row["score"] = derl.failure_score
        log.write(json.dumps(row) + "\n")
        log.flush()
        os.fsync(log.fileno())
        rows[i] = row
        emit("candidate", row)

    try:
        jobs = []
        batch: dict[int, str] = {}
        for i, p in enumerate(proposals):
            if i in rows:
                continue
            if not p.valid:
                record(i, {"program": p.text, "status": "invalid", "error": p.error})
                continue
            if batched:  # every valid candidate of the round in one compiled program
                batch[i] = p.text
                continue
            name = f"{base.get('name', 'derl')}_r{r:03d}_c{i:02d}"
            parent = run_dir / "inner" / f"r{r:03d}_c{i:02d}"
            parent.mkdir(parents=True, exist_ok=True)
            validation = derl.validation.model_dump() if derl.validation is not None else None
            jobs.append((i, (base, p.text, prims, name, str(parent), validation)))
        if batch:
            parent = run_dir / "inner" / f"r{r:03d}_batch"
            parent.mkdir(parents=True, exist_ok=True)
            for i, row in train_batch(base, batch, prims, f"{base.get('name', 'derl')}_r{r:03d}", str(parent),
                                      derl.grammar()).items():
                record(i, row)
        if pool is None:
            for i, args in jobs:
                record(i, train_candidate(*args))
        else:
            futures = {pool.submit(train_candidate, *args): i for i, args in jobs}
            pending = set(futures)
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in finished:
                    record(futures[f], f.result())
    finally:
        log.close()
