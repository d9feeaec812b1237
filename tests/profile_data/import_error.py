import not_a_real_module_dlcheck  # noqa: F401
import torch  # noqa: F401

dataset = None
