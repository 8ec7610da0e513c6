"""Weights and networks that travel: safetensors, ONNX and TorchScript (`alexnet export`)."""
