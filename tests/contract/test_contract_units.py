"""Unit tests of the program contracts: launch, data layout, ckpt.pt report, edits, config, prompts."""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from darwin_bot import config as config_mod
from darwin_bot.config import ProgramConfig
from darwin_bot.core import Budget, EvalResult
from darwin_bot.errors import ConfigError, MutationRejected
from darwin_bot.mutation import prompts, validate_files
from darwin_bot.program import LaunchRequest, contract_for, dynamic_parts, toml_for
from darwin_bot.program.nanogpt import README_CPU_ARGS
from tests.contract.conftest import LAYOUT, edit

NANO = ProgramConfig(contract="nanogpt", args={"tiny": ("config/train_tiny.py",)})


def _request(**changes) -> LaunchRequest:
    base = dict(budget=Budget(iters=7), seed=3, device="cpu", preset="tiny",
                data="/sandbox/data", out="/sandbox/out")  # fmt: skip
    return LaunchRequest(**{**base, **changes})


def test_nanogpt_launch_is_its_readme_command_with_darwins_overrides(tmp_path: Path):
    launch = contract_for(ProgramConfig(contract="nanogpt")).launch(_request(), LAYOUT)
    assert launch.argv[0] == "train.py" and launch.cwd == "."
    assert launch.argv[1 : 1 + len(README_CPU_ARGS)] == README_CPU_ARGS
    overrides = launch.argv[1 + len(README_CPU_ARGS) :]
    assert overrides == (
        "--out_dir=/sandbox/out",
        "--dataset=/sandbox/data",
        "--max_iters=7",
        "--eval_interval=7",
        "--always_save_checkpoint=True",
        "--device=cpu",
        "--eval_iters=1",
        "--compile=False",
        "--dtype=float32",
    )  # fmt: skip  (no --seed, no --wandb_log: the fixture defines neither)


def test_overrides_follow_the_globals_train_py_defines(tmp_path: Path):
    tree = tmp_path / "t"
    (tree / "nano").mkdir(parents=True)
    (tree / "nano" / "train.py").write_text("seed = 0\nwandb_log = True\nmax_iters = 1\n")
    program = ProgramConfig(contract="nanogpt", train="nano/train.py", args={"tiny": ()})
    launch = contract_for(program).launch(_request(device="cuda"), tree)
    assert launch.cwd == "nano" and launch.cwd_in("/sandbox/tree") == "/sandbox/tree/nano"
    assert launch.argv == ("train.py", "--max_iters=7", "--wandb_log=False", "--seed=3")


def test_a_time_budget_is_a_clear_error_for_nanogpt():
    with pytest.raises(ConfigError, match="iteration budget"):
        contract_for(NANO).launch(_request(budget=Budget(seconds=5.0)), LAYOUT)


def test_stage_data_writes_meta_pkl_and_a_stand_in_val_cut_from_train(tmp_path: Path):
    train = np.arange(50_000, dtype=np.uint16) % 65
    train.tofile(tmp_path / "train.bin")
    meta = {"vocab_size": 65, "itos": ["a"] * 65}
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    contract_for(NANO).stage_data(tmp_path)
    assert pickle.loads((tmp_path / "meta.pkl").read_bytes()) == meta
    val = np.fromfile(tmp_path / "val.bin", dtype=np.uint16)
    assert len(val) == 5_000 and np.array_equal(val, train[-5_000:])  # the tail of train.bin


def _ckpt(path: Path, **changes) -> Path:
    sys.path.insert(0, str(LAYOUT))
    try:
        import model as fixture_model  # the fixture's GPT
    finally:
        sys.path.remove(str(LAYOUT))
    args = dict(
        n_layer=1, n_head=2, n_embd=16, block_size=16, bias=True, vocab_size=65, dropout=0.0
    )
    gpt = fixture_model.GPT(fixture_model.GPTConfig(**args))
    ckpt = {"model": {f"_orig_mod.{k}": v for k, v in gpt.state_dict().items()},
            "model_args": args, "iter_num": 5,
            "config": {"batch_size": 4, "gradient_accumulation_steps": 2, "block_size": 16}}  # fmt: skip
    ckpt.update(changes)
    torch.save(ckpt, path)
    return path


def test_report_from_ckpt_pt_and_its_errors(tmp_path: Path):
    contract = contract_for(NANO)
    _ckpt(tmp_path / "ckpt.pt")
    report = contract.read_report(tmp_path, wall_s=2.5)
    assert report is not None
    assert (report.iterations, report.tokens_seen, report.train_seconds) == (5, 5 * 4 * 2 * 16, 2.5)
    assert report.shape == {"n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 16}
    _ckpt(tmp_path / "ckpt.pt", model_args="nope")
    with pytest.raises(ValueError, match="model_args"):
        contract.read_report(tmp_path, wall_s=1.0)
    _ckpt(tmp_path / "ckpt.pt", extra=Path("/etc"))  # not a weights-only type: never unpickled
    with pytest.raises(ValueError, match="weights_only"):
        contract.read_report(tmp_path, wall_s=1.0)
    assert contract.output_problem(tmp_path) is None
    (tmp_path / "ckpt.pt").unlink()
    assert "wrote no ckpt.pt" in (contract.output_problem(tmp_path) or "")


def test_adapter_gives_full_logits_with_dummy_targets_and_strips_orig_mod(tmp_path: Path):
    from darwin_bot.evaluate import nanogpt_adapter

    model = nanogpt_adapter.load(str(LAYOUT), "model.py", str(_ckpt(tmp_path / "ckpt.pt")), "cpu")
    seen: list[torch.Tensor | None] = []
    inner_forward = model.inner.forward
    model.inner.forward = lambda idx, targets=None: (
        seen.append(targets),
        inner_forward(idx, targets),
    )[1]
    idx = torch.randint(0, 65, (3, 16))
    with torch.no_grad():
        out = model(idx)
        again = model(idx)
    assert tuple(out.shape) == (3, 16, 65) and torch.equal(out, again)
    assert (
        seen[0] is None and model.dummy_targets is True
    )  # forward(idx) gave the last position only
    assert all(t is not None and not t.any() for t in seen[1:])  # zeros, never the next tokens
    sys.modules.pop("model", None)


def _train_text() -> str:
    return (LAYOUT / "train.py").read_text()


def _validate(new_train: str) -> None:
    files = {"train.py": _train_text(), "model.py": (LAYOUT / "model.py").read_text()}
    validate_files(files, {"train.py": new_train}, evolvable=("model.py", "train.py"),
                   allowed_imports=("math",), max_file_lines=800, program=NANO)  # fmt: skip


def test_validator_keeps_the_users_exec_but_rejects_removing_what_darwin_sets():
    text = _train_text()
    _validate(text.replace("learning_rate = 3e-3", "learning_rate = 2e-3"))  # exec is the user's
    with pytest.raises(MutationRejected, match="configurator.py was removed"):
        _validate(text.replace('exec(open("configurator.py").read())', "pass"))
    with pytest.raises(MutationRejected, match="max_iters"):
        _validate(text.replace("max_iters = 200\n", ""))


def test_nanogpt_config_needs_its_files_evolvable_and_a_known_preset():
    base = {"program": {"contract": "nanogpt"}}
    with pytest.raises(ConfigError, match="evolution.evolvable must hold train.py, model.py"):
        config_mod.from_dict(base)
    ok = {**base, "evolution": {"evolvable": ["model.py", "train.py"]}}
    assert config_mod.from_dict(ok).program.contract == "nanogpt"
    with pytest.raises(ConfigError, match="unknown preset 'paper' for the nanogpt contract"):
        config_mod.from_dict({**ok, "budget": {"preset": "paper"}})
    with pytest.raises(ConfigError, match="program.contract must be one of"):
        config_mod.from_dict({"program": {"contract": "jax"}})


def test_init_toml_for_nanogpt_parses_to_its_presets(tmp_path: Path):
    path = tmp_path / "darwin.toml"
    path.write_text(toml_for("nanogpt"))
    cfg = config_mod.load(path)
    assert cfg.evolution.evolvable == ("model.py", "train.py")
    assert cfg.program.args["tiny"] == README_CPU_ARGS
    assert cfg.program.args["shakespeare-char"] == ("config/train_shakespeare_char.py",)
    assert cfg.program.context == {"tiny": 64, "shakespeare-char": 256}
    assert toml_for("darwin") == config_mod.DEFAULT_TOML


def test_rules_are_the_contracts_and_the_darwin_text_is_unchanged():
    darwin = prompts._rules(("math",), 800)
    assert "writes $DARWIN_OUT/model.pt and\n  $DARWIN_OUT/train.json" in darwin
    nano = prompts._rules(("math",), 800, NANO)
    assert "DARWIN_OUT/model.pt" not in nano
    assert "configurator.py" in nano and "config/train_tiny.py" in nano


@pytest.mark.parametrize(
    ("status", "reason", "missing"),
    [
        ("failed", "train.py exited with code 1", "training"),
        ("failed", "train.py wrote no ckpt.pt in out_dir (it wrote: nothing)", "output ckpt.pt"),
        ("failed", "bad training report: ckpt.pt has no 'model_args' dict", "output ckpt.pt"),
        (
            "failed",
            "scoring failed: running the exported graph crashed (exit code 1)",
            "model loads and exports as a graph",
        ),
        (
            "rejected",
            "the model cannot be exported as a graph (UserError: data-dependent ...); ...",
            "model loads and exports as a graph",
        ),
        (
            "rejected",
            "the exported graph cannot be scored: the exported graph calls torch.ops.aten.rand",
            "model loads and exports as a graph",
        ),
        (
            "rejected",
            "forward returned logits of shape [4, 15, 65]",
            "logits [B, T, vocab], causal",
        ),
        ("timeout", "some reason no stage names", "smoke test"),
    ],
)
def test_a_smoke_result_names_the_first_part_it_broke(status, reason, missing):
    result = EvalResult(status, reason, None, "cpu", 0, Budget(iters=1), "1", "", log_tail="")
    parts = dynamic_parts(contract_for(NANO), result)
    assert [p.name for p in parts if not p.ok] == [missing]
    assert all(p.ok for p in parts[:-1])


def test_static_parts_name_each_missing_piece(tmp_path: Path):
    import shutil

    tree = tmp_path / "t"
    shutil.copytree(LAYOUT, tree)
    (tree / "configurator.py").unlink()
    edit(tree / "model.py", "class GPTConfig:", "class Config:")
    misses = [p.name for p in contract_for(NANO).static_parts(tree, "tiny") if not p.ok]
    assert misses == ["file configurator.py", "model GPT/GPTConfig"]
