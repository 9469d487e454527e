"""int8 Linear layers for inference on the CPU: the speech model's encoders spend most of their time in Linear
layers, and dynamic int8 quantization (weights int8 per output channel, activations quantized per call) runs them
~3× faster with outputs close to fp32's (MODEL_CARD.md, Speed). Inference only: the modules it returns do not
train, and a GPU runs the fp32 originals."""

from __future__ import annotations


def int8_linears(module, device: str = "cpu"):
    """For a module that runs on ``device``: a copy with every ``nn.Linear`` quantized to int8 (``module`` stays as
    it was); ``module`` itself on a GPU, or where torch has no int8 CPU kernels."""
    import warnings

    import torch

    if torch.device(device).type != "cpu" or torch.backends.quantized.engine == "none":
        return module
    try:
        with warnings.catch_warnings():  # torch.ao's eager quantization is deprecated in favour of torchao
            warnings.simplefilter("ignore")
            from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

            # per output channel: the p/b/m detector's probabilities moved less than with one scale per matrix
            return quantize_dynamic(module, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)
    except (ImportError, RuntimeError):  # a torch without it, or without kernels for this CPU: fp32 as before
        return module
