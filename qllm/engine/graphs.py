"""CUDA graphs: replay a whole forward and backward of the engine as two graph launches.

Why: on a GPU one step of the engine is a few hundred small kernels, and launching them one by
one from Python (10-20 us each) takes longer than running them until n ~ 12. A captured graph
replays the same kernels with one launch. The pattern is PyTorch's ``make_graphed_callables``
with two guards it lacks: outputs and gradients are returned as copies (a later replay would
overwrite them), and a call made while an earlier call's backward is still pending runs eagerly
(a replay would overwrite the activations that backward needs).

Only CUDA tensors, only while autograd records (training); one captured pair per circuit, batch
shape, dtype and set of inputs that need gradients. Each pair keeps its own memory pool (about
one eager step's peak), so ``GraphCache`` holds at most ``max_graphs`` of them.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict

import torch
from torch.autograd.function import once_differentiable

from qllm.engine.simulate import simulate


class _Token:
    """Lives as long as the autograd node of one graphed call (a weakref target)."""


class CircuitGraph:
    """One captured forward + backward of ``simulate(spec, x, w, strategy)``."""

    def __init__(self, spec, x: torch.Tensor, w: torch.Tensor, strategy: str, warmup: int = 3):
        self.needs = (x.requires_grad, w.requires_grad)
        self.x = x.detach().clone().requires_grad_(x.requires_grad)
        self.w = w.detach().clone().requires_grad_(w.requires_grad)
        leaves = [t for t in (self.x, self.w) if t.requires_grad]
        side = torch.cuda.Stream(x.device)
        side.wait_stream(torch.cuda.current_stream(x.device))
        with torch.cuda.stream(side):  # warm-up builds plans and index tables outside capture
            for _ in range(warmup):
                out = simulate(spec, self.x, self.w, strategy)
                torch.autograd.grad(out, leaves, torch.ones_like(out))
        torch.cuda.current_stream(x.device).wait_stream(side)
        self.forward_graph, self.backward_graph = torch.cuda.CUDAGraph(), torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.forward_graph):
            self.out = simulate(spec, self.x, self.w, strategy)
        self.grad_out = torch.zeros_like(self.out)
        with torch.cuda.graph(self.backward_graph, pool=self.forward_graph.pool()):
            self.grads = torch.autograd.grad(self.out, leaves, self.grad_out)
        self.generation = 0
        self.pending = None  # weakref to the token of the call whose backward has not run

    def busy(self) -> bool:
        return self.pending is not None and self.pending() is not None

    def __call__(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return _Replay.apply(self, x, w)


class _Replay(torch.autograd.Function):
    @staticmethod
    def forward(ctx, graph: CircuitGraph, x, w):
        graph.x.copy_(x)
        graph.w.copy_(w)
        graph.forward_graph.replay()
        graph.generation += 1
        ctx.graph, ctx.generation, ctx.token = graph, graph.generation, _Token()
        graph.pending = weakref.ref(ctx.token)
        return graph.out.clone()

    @staticmethod
    @once_differentiable  # the replayed gradients carry no graph: a double backward must fail
    def backward(ctx, grad_out):
        graph = ctx.graph
        if ctx.generation != graph.generation:
            raise RuntimeError("backward through a CUDA-graphed circuit call after a newer call "
                               "replaced its activations (e.g. retain_graph=True and a second "
                               "backward): use the backend option cuda_graphs=False for this")
        graph.grad_out.copy_(grad_out)
        graph.backward_graph.replay()
        graph.pending = None
        grads = iter(g.clone() for g in graph.grads)
        gx = next(grads) if graph.needs[0] else None
        gw = next(grads) if graph.needs[1] else None
        return None, gx, gw


class GraphCache:
    """Graphed ``simulate`` for training on CUDA; anything else runs eagerly."""

    def __init__(self, max_graphs: int = 4):
        self.max_graphs = max_graphs
        self.graphs: OrderedDict = OrderedDict()

    def simulate(self, spec, x: torch.Tensor, w: torch.Tensor, strategy: str = "auto"):
        if not (x.is_cuda and torch.is_grad_enabled() and (x.requires_grad or w.requires_grad)):
            return simulate(spec, x, w, strategy)
        key = (spec, strategy, tuple(x.shape), x.dtype, x.device, x.requires_grad, w.requires_grad)
        graph = self.graphs.get(key)
        if graph is None:
            while len(self.graphs) >= self.max_graphs:
                self.graphs.popitem(last=False)
            graph = self.graphs[key] = CircuitGraph(spec, x, w, strategy)
        self.graphs.move_to_end(key)
        if graph.busy():  # an earlier call still needs its activations: do not overwrite them
            return simulate(spec, x, w, strategy)
        return graph(x, w)
