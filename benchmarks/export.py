"""Benchmark ONNX export: does onnxruntime give PyTorch's logits, and how fast is it on the CPU?

    python benchmarks/export.py [--models custom_cnn resnet50_scratch resnet50_pretrained] [--reps 5]

For each model (random initial weights, 8 classes; the ImageNet one is built without its weights,
which changes no speed), the model is exported as ``python -m facecore export`` does
(:func:`facecore.models.onnx.export_onnx`) and, with ``--int8``, quantized dynamically. On a batch
of 32 real LFW faces (``../shared/assets/lfw-deepfunneled``, the model's own eval transform) it
prints the max abs logit difference against PyTorch, whether top-1 is equal on all 32, and the
median milliseconds per batch of 32 for PyTorch (as ``load_run`` runs it: eval, channels_last,
inference mode) and onnxruntime (CPU provider), both with the same number of threads.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
LFW = ROOT.parent / "shared" / "assets" / "lfw-deepfunneled"
BATCH = 32


def faces(n: int) -> list[np.ndarray]:
    from facecore.data.images import load_rgb

    people = sorted(p for p in LFW.iterdir() if p.is_dir())
    files = [f for p in people for f in sorted(p.glob("*.jpg"))[:1]][:n]
    return [load_rgb(f).copy() for f in files]


def median_ms(fn, reps: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def bench(name: str, crops: list[np.ndarray], reps: int, threads: int, int8: bool) -> dict[str, object]:
    import torch

    from facecore.data.transforms import eval_transform
    from facecore.device import for_inference, inference_input
    from facecore.live.export import compare
    from facecore.models.onnx import export_onnx, quantize_onnx_int8
    from facecore.models.registry import classifier_head, create_model, get_model_spec
    from facecore.recognize.onnx import _session

    torch.manual_seed(0)
    spec = get_model_spec(name)
    model = create_model(name, num_classes=8, pretrained=False).eval()
    tf = eval_transform(spec)
    x = torch.stack([tf(torch.from_numpy(c).permute(2, 0, 1)) for c in crops])
    data = export_onnx(model, classifier_head(model), spec.input_size)
    cpu = torch.device("cpu")
    fast = for_inference(model, cpu)

    def run_torch() -> np.ndarray:
        with torch.inference_mode():
            return fast(inference_input(x, cpu)).float().numpy()

    reference = run_torch()
    row: dict[str, object] = {"model": name, "onnx_mb": len(data) / 2**20}
    row["torch_ms"] = median_ms(run_torch, reps)
    sessions = {"onnx": _session(data, threads)}
    if int8:
        with tempfile.TemporaryDirectory() as tmp:
            src, dst = Path(tmp) / "m.onnx", Path(tmp) / "m.int8.onnx"
            src.write_bytes(data)
            quantize_onnx_int8(str(src), str(dst))
            row["int8_mb"] = dst.stat().st_size / 2**20
            sessions["int8"] = _session(dst.read_bytes(), threads)
    xn = x.numpy()
    for key, session in sessions.items():
        got = session.run(["logits"], {"input": xn})[0]
        row[key] = compare(reference, got)
        row[f"{key}_ms"] = median_ms(lambda s=session: s.run(["logits"], {"input": xn}), reps)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    models = ["custom_cnn", "resnet50_scratch", "resnet50_pretrained"]
    parser.add_argument("--models", nargs="+", default=models)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--int8", action="store_true", help="also time the dynamic int8 ONNX model")
    args = parser.parse_args()
    import onnxruntime
    import torch

    torch.set_num_threads(args.threads)
    crops = faces(BATCH)
    print(
        f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, {args.threads} threads, "
        f"batch of {len(crops)} LFW faces, median of {args.reps}"
    )
    print(f"{'model':<22}{'max|dlogit|':>12}{'top1 =':>8}{'torch ms':>10}{'onnx ms':>9}{'int8 ms':>9}"
          f"{'int8 |dlogit|':>14}{'int8 top1':>10}")
    for name in args.models:
        r = bench(name, crops, args.reps, args.threads, args.int8)
        o = r["onnx"]
        q = r.get("int8")
        int8 = (
            f"{r['int8_ms']:>9.1f}{q['max_abs_logit_diff']:>14.3f}{q['top1_agreement']:>10.1%}" if q else ""
        )
        print(
            f"{name:<22}{o['max_abs_logit_diff']:>12.2e}{str(o['top1_equal']):>8}{r['torch_ms']:>10.1f}"
            f"{r['onnx_ms']:>9.1f}{int8}"
        )


if __name__ == "__main__":
    main()
