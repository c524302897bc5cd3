"""Which numerical configurations of this CPU change the digits of lib's computations?

Runs the same computations under each configuration (a fresh process each) and compares them
bit for bit with the configuration as installed: a float32 and a float64 training run (an RK4
ODENet with five members, 150 Adam steps on the spiral) and three kernels they use (a matrix
product, addmm, tanh).  ``.ci/run`` runs the notebooks a second time under a configuration that
changes both the float32 and the float64 results here.

Usage: .venv/bin/python .ci/numerics.py
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

CONFIGURATIONS = [
    {},
    {"ATEN_CPU_CAPABILITY": "default"},
    {"ATEN_CPU_CAPABILITY": "avx2"},
    {"MKL_CBWR": "COMPATIBLE"},
    {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"},
    {"OMP_NUM_THREADS": "2"},
]


def fingerprint() -> dict:
    import torch
    import lib
    from lib import train

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    out = {"capability": torch.backends.cpu.get_cpu_capability()}
    for dtype in (torch.float32, torch.float64):
        name = str(dtype).removeprefix("torch.")
        X, y = lib.make_dataset("spiral", 500, seed=0)
        net = lib.ODENet(width=4, depth=20, method="rk4", seed=[0, 1, 2, 3, 4]).to(dtype)
        history = train(net, X.to(dtype), y, iterations=150, lr=0.05)
        blob = b"".join(p.detach().numpy().tobytes() for p in net.parameters())
        out[f"training {name}"] = hashlib.sha256(blob + history.loss.numpy().tobytes()).hexdigest()
        g = torch.Generator().manual_seed(0)
        a = torch.randn(64, 33, generator=g, dtype=dtype)
        b = torch.randn(33, 100, generator=g, dtype=dtype)
        for kernel, value in (("matmul", a @ b), ("addmm", torch.addmm(b[0], a, b)),
                              ("tanh", torch.tanh(torch.linspace(-3, 3, 1001, dtype=dtype)))):
            out[f"{kernel} {name}"] = hashlib.sha256(value.numpy().tobytes()).hexdigest()
    return out


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--fingerprint":
        print(json.dumps(fingerprint()))
        return 0
    results = []
    for config in CONFIGURATIONS:
        env = {**os.environ, "OMP_NUM_THREADS": "1", **config}
        done = subprocess.run([sys.executable, __file__, "--fingerprint"], env=env,
                              capture_output=True, text=True, check=True)
        results.append((config, json.loads(done.stdout.strip().splitlines()[-1])))
    base = results[0][1]
    keys = [k for k in base if k != "capability"]
    print("configuration".ljust(48), "CPU kernels", " ".join(k.ljust(15) for k in keys))
    for config, fp in results:
        name = " ".join(f"{k}={v}" for k, v in config.items()) or "as installed"
        marks = " ".join(("same" if fp[k] == base[k] else "CHANGED").ljust(15) for k in keys)
        print(name.ljust(48), fp["capability"].ljust(11), marks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
