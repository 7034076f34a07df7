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


@pytest.fixture(scope="session", autouse=True)
def interruptible():
    """Ctrl-C tests need SIGINT delivered: a shell that starts pytest in the background (`cmd &`) hands it
    SIGINT ignored, which the child processes would inherit too. Python's own handler puts it back."""
    import signal

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
