"""Phase 7: the GPU, when this machine has one; otherwise skipped with the reason recorded.

With a GPU: raw ONNX Runtime forecasts/s on the CUDA provider by batch size, doubling until the
GPU runs out of memory (or ``max_batch``), and a forecasting worker with
``STREAMER_ONNX_PROVIDERS=cuda,cpu`` (phase 3 again, its forecasts/s and its ratio to the CUDA
session at the batch size it used).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pipelinebench.context import log
from pipelinebench.onnx_ceiling import onnx_rates
from streamer.inference.providers import nvidia_driver_loaded

CUDA = "CUDAExecutionProvider"


def gpu_probe() -> dict[str, Any]:
    """What this machine offers: ONNX Runtime's providers, the NVIDIA driver, nvidia-smi."""
    import onnxruntime as ort

    probe: dict[str, Any] = {
        "onnxruntime_providers": list(ort.get_available_providers()),
        "nvidia_driver_loaded": nvidia_driver_loaded(),
    }
    smi = shutil.which("nvidia-smi")
    if smi is None:
        probe["nvidia_smi"] = "not found"
    else:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, check=False, timeout=20)
        probe["nvidia_smi"] = (out.stdout or out.stderr).strip()
    return probe


def skip_reason(probe: dict[str, Any]) -> str | None:
    """Why the GPU phase cannot run here (None when it can)."""
    if not probe["nvidia_driver_loaded"]:
        return (
            f"no GPU on this machine (no NVIDIA driver loaded, nvidia-smi: {probe['nvidia_smi']})"
        )
    if CUDA not in probe["onnxruntime_providers"]:
        return (
            "this ONNX Runtime build has no CUDA provider (install onnxruntime-gpu); "
            f"providers: {', '.join(probe['onnxruntime_providers'])}"
        )
    return None


def cuda_sweep(version_dir: Path, max_batch: int) -> dict[str, Any]:
    """CUDA session forecasts/s at batch 1, 4, 16 ... doubling up to ``max_batch`` or OOM."""
    rows: list[dict[str, Any]] = []
    providers_in_use: list[str] = []
    stopped = f"reached max_batch {max_batch}"
    size = 1
    while size <= max_batch:
        try:
            got = onnx_rates(
                version_dir,
                [size],
                [CUDA, "CPUExecutionProvider"],
                max_batch_size=size,
                min_seconds=1.0,
            )
        except Exception as exc:  # ONNX Runtime reports an allocation failure as an error
            stopped = f"batch {size} failed: {str(exc)[:300]}"
            break
        providers_in_use = got["providers_in_use"]
        rows.extend(got["results"])
        size *= 4 if size < 64 else 2
    return {"providers_in_use": providers_in_use, "results": rows, "stopped": stopped}


async def gpu_phase(
    *,
    version_dir: Path,
    max_batch: int,
    run_worker: Callable[[], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    probe = await asyncio.to_thread(gpu_probe)
    reason = skip_reason(probe)
    if reason is not None:
        log.info("gpu: skipped: %s", reason)
        return {"skipped": reason, "probe": probe}
    sweep = await asyncio.to_thread(cuda_sweep, version_dir, max_batch)
    worker = await run_worker()
    return {"probe": probe, "onnx_cuda": sweep, "worker_cuda": worker}
