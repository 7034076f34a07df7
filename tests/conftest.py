import pytest


@pytest.fixture(scope="module")
def one_thread():
    """Run a module's small convolutions on one thread, restoring the count afterwards.

    Small convolutions are latency-bound: on a busy 2-core machine two OpenMP threads were measured
    2-30x slower than one (see docs/evaluation.md).
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
