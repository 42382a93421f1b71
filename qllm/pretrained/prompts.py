"""Soft prompts on a frozen backbone: k trainable vectors prepended to the word embeddings.

``quantum_prompt`` generates the k prompt vectors with a VQC (P-tuning with a quantum
generator); ``prompt`` is the classical control, peft's own ``PromptTuningConfig`` (one free
vector per prompt token). Both follow peft's mechanics exactly: the prompts are concatenated in
front of ``word_embeddings(input_ids)``, the attention mask gets k leading ones, and the
backbone adds its position / token-type embeddings to the whole sequence (so the text tokens sit
at positions k..k+T-1 in both variants).

Pooling covers the text tokens only: the prompt positions are sliced off the last hidden state
before mean pooling, so the pooled feature is an average over the same T tokens as every other
adapter's (the prompts steer the text through attention, they are not averaged in as extra
"tokens" whose weight would depend on k and on the text length).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput

from qllm.pretrained.backbones import Backbone


class QuantumPromptGenerator(nn.Module):
    """k prompt vectors from a VQC: trainable angles (k, n_qubits) -> circuit expectations
    (k, n_qubits) -> bias-free Linear -> (k, hidden).

    Args:
        k: prompt tokens.
        hidden: the backbone's hidden size.
        opts: ``n_qubits`` / ``n_layers`` / ``ansatz`` of the circuit.
    """

    def __init__(self, k: int, hidden: int, opts: dict):
        super().__init__()
        from qllm.pretrained.circuit import adapter_vqc

        self.vqc = adapter_vqc(opts)
        n_in, n_out = self.vqc.spec.n_inputs, self.vqc.spec.n_observables
        # small spread around 0: distinct prompts from the start, none saturating the circuit
        self.angles = nn.Parameter(0.1 * torch.randn(k, n_in))
        # no bias: with n_qubits == k the budget is peft's k * hidden plus the circuit's weights
        self.project = nn.Linear(n_out, hidden, bias=False)

    def forward(self) -> torch.Tensor:
        """Returns: (k, hidden) prompt vectors (k circuits, shared by the whole batch)."""
        return self.project(self.vqc(self.angles))


class PromptedEncoder(nn.Module):
    """Runs ``encoder`` on ``[prompts; word embeddings]`` and returns the text positions only.

    Args:
        encoder: the frozen transformers model (prompts from ``generator``), or a peft
            ``PeftModelForFeatureExtraction`` with prompt tuning (``generator`` None: peft
            prepends its own prompts and extends the mask).
        k: prompt tokens.
        generator: a module whose ``forward()`` returns (k, hidden), or None for peft.
    Returns (forward):
        an output whose ``last_hidden_state`` is (B, T, hidden), the input's T text positions.
    """

    def __init__(self, encoder: nn.Module, k: int, generator: nn.Module | None = None):
        super().__init__()
        self.encoder, self.k, self.generator = encoder, k, generator

    def prompts(self) -> torch.Tensor:
        """The current (k, hidden) prompt vectors, of either variant."""
        if self.generator is not None:
            return self.generator()
        return self.encoder.get_prompt(batch_size=1)[0]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> BaseModelOutput:
        if self.generator is None:
            out = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
        else:
            out = run_with_prompts(self.encoder, self.generator(), input_ids, attention_mask)
        return BaseModelOutput(last_hidden_state=out.last_hidden_state[:, self.k:])

    def get_nb_trainable_parameters(self) -> tuple[int, int]:
        """peft's counter for ``prompt`` (trainable, all) of the wrapped peft model."""
        return self.encoder.get_nb_trainable_parameters()


def run_with_prompts(encoder: nn.Module, prompts: torch.Tensor, input_ids: torch.Tensor,
                     attention_mask: torch.Tensor):
    """The encoder on ``cat(prompts, word_embeddings(input_ids))`` with the mask extended by
    ones, as peft's prompt tuning does it.

    Args:
        encoder: a transformers model; prompts: (k, H); input_ids / attention_mask: (B, T).
    Returns:
        the encoder's output over all k + T positions.
    """
    words = encoder.get_input_embeddings()(input_ids)
    batch = prompts.to(words.dtype).unsqueeze(0).expand(words.shape[0], -1, -1)
    ones = attention_mask.new_ones(attention_mask.shape[0], prompts.shape[0])
    return encoder(inputs_embeds=torch.cat((batch, words), dim=1),
                   attention_mask=torch.cat((ones, attention_mask), dim=1))


def quantum_prompt(backbone: Backbone, encoder: nn.Module, opts: dict) -> nn.Module:
    """``quantum_prompt``: ``rank`` prompt tokens from a ``QuantumPromptGenerator``."""
    gen = QuantumPromptGenerator(opts["rank"], backbone.hidden_size, opts)
    return PromptedEncoder(encoder, opts["rank"], gen)


def peft_prompt(backbone: Backbone, encoder: nn.Module, opts: dict) -> nn.Module:
    """``prompt``: peft's ``PromptTuningConfig`` (random init) with ``rank`` virtual tokens."""
    from peft import PromptTuningConfig, get_peft_model

    cfg = PromptTuningConfig(task_type="FEATURE_EXTRACTION", num_virtual_tokens=opts["rank"])
    return PromptedEncoder(get_peft_model(encoder, cfg), opts["rank"])
