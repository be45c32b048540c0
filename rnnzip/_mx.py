"""Import MXNet with reduced-precision tensor math switched off.

TF32 or fp16 tensor cores would make GPU matrix products inexact, which breaks
the exact coding model and makes training runs differ from the CPU's.
"""

import os

os.environ.setdefault("MXNET_CUDA_ALLOW_TENSOR_CORE", "0")
os.environ.setdefault("MXNET_CUDA_TENSOR_OP_MATH_ALLOW_CONVERSION", "0")

import mxnet  # noqa: E402

mx = mxnet
