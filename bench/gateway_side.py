"""One side of the gateway benchmark: the whole service of one source tree, in a child
process that bench/gateway_bench.py drives over a pipe.

    python -m bench.gateway_side      # started by bench/gateway_bench.py, not by hand

The child runs in the tree measured (the working tree, or an export of an earlier git
revision: :func:`exported`), with that tree on its ``PYTHONPATH``: the service code is
that tree's (tests/support/stack.py's ``running_stack``, gateway/, extractor/, matcher/),
and so are the enrolment and floor functions of its bench/gateway_bench.py, which call
the service's internals; this module and the CPU reader (:data:`HARNESS`) are the
current ones, copied over the export's. The load generator, the CPU readings' timing
and the figures stay in the driving process, the current tree's.

Protocol: one JSON object per line on stdin (``{"op": ..., ...}``), one JSON answer per
line on the child's original stdout (``{"ok": ...}`` or ``{"error": traceback}``); the
child's own prints and logs go to stderr. Operations: ``setup`` (tenant, gallery, real
people, in a first stack), ``enrol`` (synthetic rows up to ``n`` events, then a restarted
stack left running), ``floor`` (extractor and matcher alone, in the child),
``cpu`` (the REST shim's threads' CPU so far, bench/rest_cpu.py), ``stop``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import IO, Any

from bench.dataset import faces_dir
from bench.revisions import source_tree

HARNESS = ("gateway_side.py", "rest_cpu.py")
"""The bench modules copied from the current tree into an export. The service-facing
functions a side calls (``set_up``, ``synthetic_vectors``, ``enrol_synthetic``,
``measure_floor``) stay the export's own bench/gateway_bench.py's: they use the
service's internals (store, matcher and extractor clients), which change between
revisions along with them."""
_PATH_VARIABLES = ("FACEGATE_DATA_DIR", "FACEGATE_MODEL_DIR")


class SideError(RuntimeError):
    """A side's operation failed (its traceback is the message) or the side died."""


@contextmanager
def exported(ref: str) -> Iterator[Path]:
    """The repository as of ``ref`` with the current harness modules copied over it."""
    with source_tree(ref) as folder:
        here = Path(__file__).parent
        for module in HARNESS:
            shutil.copy(here / module, folder / "bench" / module)
        yield folder


class Side:
    """The driver's handle on one side: a child process serving one tree."""

    def __init__(self, label: str, tree: Path) -> None:
        self.label = label
        self.tree = tree
        env = dict(os.environ)
        for name in _PATH_VARIABLES:  # the child runs elsewhere: no relative paths
            if env.get(name):
                env[name] = os.path.abspath(env[name])
        env["FACEGATE_FACES_DIR"] = str(faces_dir().resolve())
        env["PYTHONPATH"] = os.pathsep.join(
            [str(tree), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.gateway_side"],
            cwd=tree,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def call(self, op: str, **args: Any) -> Any:
        """Run ``op`` in the side; its answer."""
        stdin, stdout = self._process.stdin, self._process.stdout
        if stdin is None or stdout is None:
            raise SideError(f"{self.label}: no pipe")
        try:
            stdin.write(json.dumps({"op": op, **args}) + "\n")
            stdin.flush()
        except BrokenPipeError:
            raise SideError(f"{self.label}: the side has ended") from None
        line = stdout.readline()
        if not line:
            raise SideError(f"{self.label}: the side ended during {op!r}")
        answer = json.loads(line)
        if "error" in answer:
            raise SideError(f"{self.label} side, {op!r}:\n{answer['error']}")
        return answer["ok"]

    def close(self) -> None:
        if self._process.poll() is None:
            with suppress(SideError):
                self.call("stop")
            try:
                self._process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


class _Service:
    """The child's state: one data directory, at most one running stack."""

    def __init__(self, stack: ExitStack) -> None:
        from bench import gateway_bench

        self._bench = gateway_bench
        self._data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fg-gw-")))
        self._running = ExitStack()
        stack.callback(self._running.close)
        self._stack: Any = None
        self._setup: Any = None
        self._vectors: Any = None
        self._done = 0

    def _start(self) -> Any:
        from tests.support.stack import running_stack

        self._running.close()
        self._stack = self._running.enter_context(running_stack(self._data_dir, rate_per_second=0))
        return self._stack

    def setup(self, sizes: list[int]) -> dict[str, Any]:
        import gateway
        from extractor.models.catalog import DEFAULT_RECOGNIZER, spec_by_name

        bench = self._bench
        setup = bench.set_up(self._start())
        self._running.close()
        self._setup = setup
        dim = spec_by_name(DEFAULT_RECOGNIZER).embedding_dim
        self._vectors = bench.synthetic_vectors(max(sizes) - len(setup.people), dim)
        target = setup.target
        return {
            "access_key_id": target.access_key_id,
            "secret_access_key": target.secret_access_key,
            "api_key": target.api_key,
            "gallery_id": setup.gallery_id,
            "people": [[str(p.registered), str(p.probe), p.subject_id] for p in setup.people],
            "model_id": setup.model_id,
            "dim": dim,
            "service_code": str(Path(gateway.__file__).resolve().parent.parent),
            "pid": os.getpid(),
        }

    def enrol(self, n: int) -> dict[str, Any]:
        real = len(self._setup.people)
        rows = range(self._done, n - real)
        enrol = self._bench.enrol_synthetic(self._start(), self._setup, self._vectors, rows)
        self._running.close()
        self._done = n - real
        started = time.perf_counter()
        stack = self._start()  # a shard merges what is pending on open: a complete graph
        return {
            "enrol": {**enrol, "restart_s": time.perf_counter() - started},
            "rest_url": stack.rest_url,
            "grpc_address": stack.grpc_address,
            "synthetic": self._done,
            "real": real,
        }

    def floor(self, rounds: int) -> dict[str, Any]:
        probes = [p.probe.read_bytes() for p in self._setup.people]
        result: dict[str, Any] = self._bench.measure_floor(self._stack, self._setup, probes, rounds)
        return result

    def handle(self, request: dict[str, Any]) -> Any:
        from bench import rest_cpu

        op = request.pop("op")
        if op == "setup":
            return self.setup(**request)
        if op == "enrol":
            return self.enrol(**request)
        if op == "floor":
            return self.floor(**request)
        if op == "cpu":
            return rest_cpu.snapshot()
        raise ValueError(f"unknown operation {op!r}")


def serve(requests: IO[str], answers: IO[str]) -> None:
    """Answer requests until ``stop`` or the end of input."""
    with ExitStack() as stack:
        service = _Service(stack)
        for line in requests:
            request = json.loads(line)
            if request.get("op") == "stop":
                answers.write(json.dumps({"ok": None}) + "\n")
                answers.flush()
                break
            try:
                answer = {"ok": service.handle(request)}
            except Exception:
                answer = {"error": traceback.format_exc()}
            answers.write(json.dumps(answer) + "\n")
            answers.flush()


def main() -> int:
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # prints and logs of the service go to stderr, not into the answers
    sys.stdout = sys.stderr
    serve(sys.stdin, answers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
