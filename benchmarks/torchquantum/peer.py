"""torchquantum's step time on engine_speed's workload; run by benchmarks/engine_speed.py
--torchquantum with the interpreter of the torchquantum venv (``make torchquantum-env``).

Circuit = qllm's ``build_circuit(n, L)``: RY(x_q) on every qubit, then L x [RY(w), RZ(w) on every
qubit (RY = w[2nl + 2q], RZ = w[2nl + 2q + 1]), CNOT ring]; <Z_q> on every qubit. torchquantum's
functional (dynamic) mode, float32. Prints one JSON line: median and all step times, and the
expectation values of the first 4 tokens so the caller can check the circuit matches its own.

    .venv-tq/bin/python benchmarks/torchquantum/peer.py N BATCH LAYERS REPEATS
"""

import json
import statistics
import sys
import time
import types
import warnings


def stub_torchvision() -> None:
    """torchquantum/__init__ imports torchvision for its dataset helpers only; PyPI's torchvision
    is a CUDA build that cannot load next to a CPU torch, so a stub stands in for it (any class
    it hands out has every attribute, e.g. InterpolationMode.BILINEAR, and cannot be built)."""

    class AnyAttribute(type):
        def __getattr__(cls, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return name

    class Unavailable(metaclass=AnyAttribute):
        def __init__(self, *args, **kwargs):
            raise RuntimeError("torchvision is a stub in the torchquantum benchmark venv")

    def module_getattr(name):
        if name.startswith("__"):
            raise AttributeError(name)
        return Unavailable

    for name in ("torchvision", "torchvision.datasets", "torchvision.transforms",
                 "torchvision.datasets.utils"):
        module = types.ModuleType(name)
        module.__getattr__ = module_getattr
        sys.modules[name] = module
    sys.modules["torchvision"].datasets = sys.modules["torchvision.datasets"]
    sys.modules["torchvision"].transforms = sys.modules["torchvision.transforms"]
    sys.modules["torchvision.datasets"].utils = sys.modules["torchvision.datasets.utils"]


warnings.filterwarnings("ignore")
try:
    import torchvision  # noqa: F401
except Exception:
    for key in [k for k in sys.modules if k.startswith("torchvision")]:
        del sys.modules[key]
    stub_torchvision()

import torch  # noqa: E402
import torchquantum as tq  # noqa: E402
import torchquantum.functional as tqf  # noqa: E402


def circuit(x: torch.Tensor, w: torch.Tensor, n: int, layers: int) -> torch.Tensor:
    dev = tq.QuantumDevice(n_wires=n, bsz=x.shape[0], device=x.device)
    for q in range(n):
        tqf.ry(dev, wires=q, params=x[:, q])
    k = 0
    for _ in range(layers):
        for q in range(n):
            tqf.ry(dev, wires=q, params=w[k:k + 1])
            tqf.rz(dev, wires=q, params=w[k + 1:k + 2])
            k += 2
        for q in range(n if n > 2 else n - 1):
            tqf.cnot(dev, wires=[q, (q + 1) % n])
    return tq.measurements.expval(dev, list(range(n)), [tq.PauliZ() for _ in range(n)])


def main() -> None:
    n, batch, layers, repeats = map(int, sys.argv[1:5])
    torch.set_num_threads(int(sys.argv[5]) if len(sys.argv) > 5 else torch.get_num_threads())
    g = torch.Generator().manual_seed(0)  # engine_speed.make_inputs' draws
    x = (torch.rand(batch, n, generator=g) * 3.0).requires_grad_(True)
    w = (torch.rand(2 * n * layers, generator=g) * 6.0).requires_grad_(True)

    def step():
        x.grad = w.grad = None
        circuit(x, w, n, layers).sum().backward()

    step()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    with torch.no_grad():
        check = circuit(x[:4], w, n, layers).tolist()
    print(json.dumps({"median_s": statistics.median(times), "times_s": times, "check": check,
                      "version": getattr(tq, "__version__", "0.1.8")}))


if __name__ == "__main__":
    main()
