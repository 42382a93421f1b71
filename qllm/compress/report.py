"""The compression trade as one table: accuracy, logical and transpiled gates and depth on a
target, shots and projected QPU seconds, before and after.

Gate counts come from ``qllm.cost`` (Qiskit transpiles each circuit's ``to_qiskit()`` onto the
target: the same counts as Qiskit's own ``count_ops`` of the compressed circuit); QPU seconds from
its hardware profile, for parameter-shift training (fewer weights: fewer shifted circuits) and for
inference.
"""

from __future__ import annotations

from qllm.compress.apply import quantum_layers

COUNT_KEYS = ("n_1q", "n_2q", "depth", "depth_2q")


def model_row(model, task, target: str = "ibm_torino", shots: int = 1024,
              profile: str = "ibm_heron", batch_size: int = 32, epochs: int = 1,
              accuracy: dict | None = None) -> dict:
    """One row of the table for one model (counts summed over its quantum layers).

    Args:
        model: a HybridTransformer.
        task: the TaskData it is scored on (test split).
        target / shots / profile: transpile target, shots per circuit, QPU profile.
        batch_size / epochs: the training run the per-epoch projection assumes.
        accuracy: a precomputed ``qllm.train.evaluate`` result (else it is evaluated).
    """
    import math

    from qllm.train import evaluate

    metrics = accuracy or evaluate(model, task)
    steps = math.ceil(len(task.x_train) / batch_size)
    rep = model.cost_report(seq_len=task.seq_len, shots=shots, target=target,
                            gradient="parameter-shift", profile=profile, batch_size=batch_size,
                            steps_per_epoch=steps, epochs=epochs)
    row = {"accuracy": metrics["accuracy"], "loss": metrics["loss"],
           "weights": sum(layer.spec.n_weights for layer in quantum_layers(model).values())}
    for kind in ("logical", "transpiled"):
        for k in COUNT_KEYS:
            vals = [getattr(q, kind)[k] for q in rep.quantum]
            # depths: the deepest circuit (layers run one after another, each its own circuit)
            row[f"{kind}_{k}"] = max(vals) if k.startswith("depth") else sum(vals)
    proj = rep.projections[profile]
    row["train_step_executions"] = proj["per_step"]["executions"]
    row["train_step_shots"] = proj["per_step"]["shots"]
    row["train_epoch_qpu_s"] = proj["per_epoch"]["qpu_seconds"]
    row["inference_token_qpu_s"] = proj["per_inference_token"]["qpu_seconds"]
    row["target"], row["shots"], row["profile"] = target, shots, profile
    return row


def layer_rows(results: dict) -> list[dict]:
    """Per circuit: ops before and after, pruned, merged, cancelled, error bound."""
    return [{"layer": name, **res.to_dict()} for name, res in results.items()]


def format_table(rows: dict) -> str:
    """Markdown: one column per model ("original", "compressed", ...)."""
    names = list(rows)
    r0 = rows[names[0]]
    lines = [f"| | {' | '.join(names)} |", "|---" * (len(names) + 1) + "|"]

    def line(label, fmt):
        lines.append(f"| {label} | " + " | ".join(fmt(rows[n]) for n in names) + " |")

    line("test accuracy", lambda r: f"{100 * r['accuracy']:.2f}%")
    line("circuit weights", lambda r: f"{r['weights']}")
    line("logical 1q/2q gates", lambda r: f"{r['logical_n_1q']}/{r['logical_n_2q']}")
    line("logical depth (2q)", lambda r: f"{r['logical_depth']} ({r['logical_depth_2q']})")
    line(f"1q/2q gates on {r0['target']}",
         lambda r: f"{r['transpiled_n_1q']}/{r['transpiled_n_2q']}")
    line(f"depth (2q) on {r0['target']}",
         lambda r: f"{r['transpiled_depth']} ({r['transpiled_depth_2q']})")
    line(f"circuits per train step ({r0['shots']} shots each)",
         lambda r: f"{r['train_step_executions']:,.0f}")
    line(f"QPU s per training epoch ({r0['profile']})", lambda r: f"{r['train_epoch_qpu_s']:,.0f}")
    line(f"QPU ms per inference token ({r0['profile']})",
         lambda r: f"{1e3 * r['inference_token_qpu_s']:.1f}")
    return "\n".join(lines)
