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


@pytest.fixture(scope="module")
def live_server():
    """Start an ASGI app on loopback in a real uvicorn (a thread of this process); yields start(asgi, port) ->
    base URL, and stops every server it started when the module ends."""
    import threading
    import time

    import uvicorn

    started = []

    def start(asgi, port: int) -> str:
        srv = uvicorn.Server(uvicorn.Config(asgi, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=srv.run, daemon=True)
        thread.start()
        deadline = time.time() + 30
        while not srv.started and time.time() < deadline:
            time.sleep(0.05)
        assert srv.started, "uvicorn did not start"
        started.append((srv, thread))
        return f"http://127.0.0.1:{port}"

    yield start
    for srv, thread in started:
        srv.should_exit = True
        thread.join(30)
