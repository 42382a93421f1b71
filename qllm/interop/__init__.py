"""qllm's engine behind other libraries' interfaces: a PennyLane device (``qllm.torch``) and
Qiskit primitives (``qllm.qiskit.Estimator``)."""
