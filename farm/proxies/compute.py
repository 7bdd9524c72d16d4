"""Score one arch of a search space with the zero-cost proxies, deterministically, never raising.

:func:`score_arch` builds the arch's network with the input spec's seed
(:mod:`farm.proxies.inputs`), makes the fixed batch and runs each requested
proxy on a shared :class:`~farm.proxies.context.ProxyContext`. Every proxy
ends as a :class:`ProxyOutcome`:

* ``ok``: a finite value;
* ``undefined``: :class:`~farm.proxies.errors.ProxyUndefined`, the proxy has no
  finite value for this arch (deterministic, recorded and not retried);
* ``failed``: anything else (the network did not build, out of memory, a bug),
  recorded with the error's type and message and retried by a re-run.

Determinism: inside :func:`deterministic_torch` PyTorch runs single-threaded
with deterministic algorithms, so the same arch, spec and PyTorch version give
bit-identical values in any process (reductions of proxies are in float64).

Example:
    >>> from farm.proxies.inputs import InputSpec
    >>> arch = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|"
    >>> [o.status for o in score_arch("nasbench201", arch, ("params", "snip"), InputSpec(4, 8, 10, 2))]
    ['ok', 'ok']
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
from torch import nn

from farm import spaces
from farm.proxies import score_fn
from farm.proxies.context import ProxyContext
from farm.proxies.errors import ProxyUndefined
from farm.proxies.inputs import InputSpec

__all__ = ["MAX_ERROR_CHARS", "ProxyOutcome", "build_model", "deterministic_torch", "score_arch"]

#: Error messages are cut to this length before they are stored.
MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class ProxyOutcome:
    """One proxy of one arch: ``value`` when ``status == 'ok'``, else ``error`` says why."""

    proxy: str
    status: str
    value: float | None = None
    error: str | None = None
    seconds: float = 0.0


@contextlib.contextmanager
def deterministic_torch() -> Iterator[None]:
    """One thread and deterministic algorithms for the duration; the previous settings come back after."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(deterministic)
        torch.set_num_threads(threads)


def build_model(space: str, arch: str, spec: InputSpec) -> nn.Module:
    """``space.build(arch)`` with PyTorch's default initialisation drawn from ``spec.seed`` (global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        model = spaces.get(space).build(arch, input_size=spec.resolution, num_classes=spec.num_classes)
    return model.float()


def score_arch(space: str, arch: str, proxies: Sequence[str], spec: InputSpec) -> list[ProxyOutcome]:
    """One :class:`ProxyOutcome` per name of ``proxies`` (in that order); never raises for a bad arch or proxy."""
    with deterministic_torch():
        started = time.perf_counter()
        try:
            context = ProxyContext(build_model(space, arch, spec), spec.make_batch())
        except Exception as error:  # noqa: BLE001 - recorded for every proxy of the arch
            message = _message("building the network", error)
            seconds = time.perf_counter() - started
            return [ProxyOutcome(name, "failed", error=message, seconds=seconds) for name in proxies]
        outcomes = []
        for name in proxies:
            started = time.perf_counter()
            try:
                value = score_fn(name)(context)
            except ProxyUndefined as error:
                outcome = ProxyOutcome(name, "undefined", error=str(error)[:MAX_ERROR_CHARS])
            except Exception as error:  # noqa: BLE001 - a failed proxy is an outcome, retried by a re-run
                outcome = ProxyOutcome(name, "failed", error=_message(name, error))
            else:
                outcome = ProxyOutcome(name, "ok", value=value)
            outcomes.append(ProxyOutcome(**{**outcome.__dict__, "seconds": time.perf_counter() - started}))
        return outcomes


def _message(what: str, error: BaseException) -> str:
    return f"{what}: {type(error).__name__}: {' '.join(str(error).split())}"[:MAX_ERROR_CHARS]
