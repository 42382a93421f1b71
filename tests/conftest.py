"""Shared pytest fixtures. Keep this file small and generic."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_everything():
    """Every test starts from the same seeds, so random draws are reproducible."""
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield


@pytest.fixture
def gen() -> torch.Generator:
    """A seeded torch Generator for tests that draw their own tensors."""
    return torch.Generator().manual_seed(1234)


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run far faster on one thread (no OpenMP spinning on a loaded machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- shared by the pretrained test files (session-scoped: MiniLM loads once) ----------------------
@pytest.fixture(scope="session")
def minilm():
    """The MiniLM backbone from its local weights."""
    from qllm.pretrained import load_backbone

    return load_backbone("minilm")


@pytest.fixture(scope="session")
def small_task():
    """The tiny food-or-IT text task (``tests.pretrained_helpers.tiny_text_task``)."""
    from tests.pretrained_helpers import tiny_text_task

    return tiny_text_task()
