"""``benchmarks/ocr2_throughput.py`` runs end to end for every in-process engine (tiny random
models on the CPU), and its real-size configs build with the released shapes (meta device)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "ocr2_throughput.py"
MODELS = ["deepseek-ocr-2", "deepseek-ocr", "deepocr"]


def load_script(name: str, module_name: str | None = None) -> ModuleType:
    """Import ``benchmarks/<name>.py`` as a module (the scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(module_name or name, SCRIPT.parent / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)  # puts benchmarks/ on sys.path for model_configs
    return module


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_script("ocr2_throughput")


@pytest.fixture()
def one_thread(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Two threads on a shared 2-core box spend most of their time waiting on each other.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("model", MODELS)
def test_tiny_benchmark_times_every_row(
    bench: ModuleType, model: str, one_thread: None, capsys: pytest.CaptureFixture[str]
) -> None:
    pages, new_tokens = 2, 3
    args = bench.parse_args(
        f"--model {model} --size tiny --device cpu --pages {pages} --new-tokens {new_tokens} "
        "--batch-sizes 1,2".split()
    )
    results = bench.run_benchmark(args)
    assert [r.name for r in results] == ["one-page loop", "batched, batch 1", "batched, batch 2"]
    for r in results:
        # Every page comes back with exactly the forced number of tokens, on both paths.
        assert (r.pages, r.tokens) == (pages, pages * new_tokens), r
        assert r.seconds > 0 and 0 < r.busy <= 1 and r.peak_gib is None
    out = capsys.readouterr().out
    assert f"model {model} tiny" in out
    table = [line for line in out.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + len(results)  # header + one row per run
    assert table[1].startswith("| one-page loop | 2 |") and "| 1.00x |" in table[1]


@pytest.mark.parametrize(
    ("model", "low", "high", "vision"),
    [
        # deepseek-ai/DeepSeek-OCR: 3.34 B (DeepEncoder 0.40 B + 3B MoE decoder).
        ("deepseek-ocr", 3.30e9, 3.38e9, (0.38e9, 0.42e9)),
        # DeepOCR: the same DeepEncoder + Qwen2-7B (7.62 B).
        ("deepocr", 7.98e9, 8.06e9, (0.38e9, 0.42e9)),
    ],
)
def test_real_size_configs_build_on_meta(
    bench: ModuleType, model: str, low: float, high: float, vision: tuple[float, float]
) -> None:
    built = bench.build_bench_model(model, "real", torch.device("meta"), torch.float32)
    total, tower = bench.count_params(built.model)
    assert low < total < high
    assert vision[0] < tower < vision[1]
    assert all(p.is_meta for p in built.model.parameters())
    # The processor's tokenizer covers the decoder's whole vocabulary.
    assert len(built.processor.tokenizer) == built.model.get_output_embeddings().out_features


@pytest.fixture(scope="module")
def sam_bench() -> ModuleType:
    return load_script("sam_attention", "sam_attention_bench")


def test_sam_attention_benchmark_prints_a_row_per_case(
    sam_bench: ModuleType, one_thread: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # The windowed case only: the global ones take seconds per view on a CPU.
    args = sam_bench.parse_args(
        ["--device", "cpu", "--views", "1", "--cases", "window-14", "--repeat", "1"]
    )
    rows = sam_bench.run_benchmark(args)
    assert [r.case for r in rows] == ["window-14"]
    row = rows[0]
    # 25 windows of 14x14, fp32: the dense bias is 25 * 12 * 196^2 * 4 bytes = 43.97 MiB.
    assert (row.length, row.head_dim) == (196, 96)
    assert row.unfolded_mib == pytest.approx(25 * 12 * 196**2 * 4 / 2**20)
    assert row.max_diff <= 1e-4 and row.unfolded_ms > 0 and row.folded_ms > 0
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert len(table) == 2 and table[1].startswith("| window-14 | 14x14 | 196 | 96 |")


def test_batched_rows_carry_the_stage_breakdown_and_stream_as_jsonl(
    bench: ModuleType, one_thread: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    rows_file = tmp_path / "rows.jsonl"
    args = bench.parse_args(
        f"--size tiny --device cpu --pages 3 --new-tokens 3 --batch-sizes plan,2 --no-loop "
        f"--jsonl {rows_file}".split()
    )
    results = bench.run_benchmark(args)
    # No memory plan on a CPU without a limit: "plan" takes the engine's CPU default (4).
    assert [r.name for r in results] == ["batched, batch 4 (plan)", "batched, batch 2"]
    for r in results:
        assert r.failed == 0 and r.pages == 3 and r.tokens == 9
        assert r.vision_s > 0 and r.prefill_s > 0 and r.decode_steps > 0 and r.preprocess_s > 0
        assert 0 < r.busy <= 1 and r.vision_prefill_ms > 0 and r.step_ms > 0
    lines = [json.loads(line) for line in rows_file.read_text().splitlines()]
    assert [row["name"] for row in lines] == [r.name for r in results]
    assert lines[1]["batch"] == 2 and lines[1]["pages_per_s"] > 0
    out = capsys.readouterr().out
    assert "| vision+prefill ms/page |" in out and "| failed |" in out


def test_realistic_lengths_run_through_both_schedulers(
    bench: ModuleType, one_thread: None, capsys: pytest.CaptureFixture[str]
) -> None:
    lengths = bench.realistic_lengths(400, 800, seed=0)
    values = sorted(lengths.values())
    # Median ~800, 90th percentile ~2000, capped at 4096 (the real-page spread).
    assert 650 < values[200] < 950 and 1600 < values[360] < 2500 and values[-1] <= 4096
    assert lengths == bench.realistic_lengths(400, 800, seed=0)  # seeded
    args = bench.parse_args(
        [
            "--size",
            "tiny",
            "--device",
            "cpu",
            "--pages",
            "5",
            "--new-tokens",
            "6",
            "--lengths",
            "realistic",
            "--batch-sizes",
            "2",
            "--schedulers",
            "static,continuous",
            "--no-loop",
        ]
    )
    static, cont = bench.run_benchmark(args)
    wanted = sum(bench.realistic_lengths(5, 6).values())
    assert static.tokens == cont.tokens == wanted  # every page ended at its own length
    assert cont.scheduler == "continuous" and 0 < (cont.occupancy or 0) <= 1
    assert static.occupancy is None
    assert cont.graph_replays == static.graph_replays == 0  # CPU: the decode step runs eagerly
    assert "| continuous, batch 2 |" in capsys.readouterr().out


def test_preprocess_benchmark_measures_each_thread_count(
    one_thread: None, capsys: pytest.CaptureFixture[str]
) -> None:
    module = load_script("preprocess_speed")
    rows = module.run_benchmark(
        module.parse_args(["--models", "deepseek-ocr", "--pages", "2", "--threads", "1,2"])
    )
    assert [(name, t) for name, t, _ in rows] == [("deepseek-ocr", 1), ("deepseek-ocr", 2)]
    assert all(rate > 0 for _, _, rate in rows)
    assert "| deepseek-ocr | 2 |" in capsys.readouterr().out


def test_guard_and_plan_figures_come_from_the_scripts(
    bench: ModuleType, one_thread: None, capsys: pytest.CaptureFixture[str]
) -> None:
    guard = load_script("guard_speed")
    times = guard.run_benchmark(
        guard.parse_args(["--batch", "4", "--vocab", "512", "--generated", "120", "--calls", "3"])
    )
    assert len(times) == 3 and all(t > 0 for t in times)
    assert bench.run_benchmark(bench.parse_args(["--size", "tiny", "--plan-gib", "2"])) == []
    out = capsys.readouterr().out
    assert "| median ms |" in out
    assert "tiny static: memory plan: 2.0 GiB free" in out and "tiny continuous:" in out
