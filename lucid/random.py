"""lucid's random number state: ``lucid.Generator`` and the default generator.

A ``Generator`` wraps numpy's PCG64 bit generator. ``lucid.rand``, ``randn``,
``randint``, ``normal`` and the ``*_like`` samplers draw from the ``generator=`` they
are given, or from ``lucid.default_generator``, which ``lucid.manual_seed(n)`` (or the
older ``lucid.random.seed(n)``) seeds; ``nn.Linear`` initialises its weights from it too.

Seeding reproduces a stream exactly, but the numbers are numpy's PCG64 streams, not
PyTorch's Mersenne-Twister ones: ``lucid.manual_seed(0); lucid.rand(3)`` has the
right distribution, not ``torch.manual_seed(0); torch.rand(3)``'s values.

>>> import lucid
>>> g = lucid.Generator().manual_seed(7)
>>> a = lucid.rand(3, generator=g).numpy()
>>> bool((a == lucid.rand(3, generator=lucid.Generator().manual_seed(7)).numpy()).all())
True
>>> state = g.get_state(); b = lucid.randn(2, generator=g).numpy()
>>> _ = g.set_state(state); bool((b == lucid.randn(2, generator=g).numpy()).all())
True
>>> g.initial_seed()
7
"""
from __future__ import annotations

import os

import numpy as np

_MASK64 = (1 << 64) - 1
_STATE_WORDS = 12  # seed (2 x 32 bits), PCG64 state (4), increment (4), has_uint32, uinteger


class Generator:
    """A random number generator: numpy's PCG64, seeded as ``torch.Generator`` is.

    >>> import lucid
    >>> g = lucid.Generator()
    >>> g.manual_seed(3) is g, g.initial_seed(), g.device
    (True, 3, 'cpu')
    """

    def __init__(self, device="cpu"):
        if str(device) != "cpu":
            raise RuntimeError(f"Generator: lucid runs on the cpu only, got device {device!r}")
        self.device = "cpu"
        self.seed()

    def manual_seed(self, seed) -> "Generator":
        """Seed with ``seed`` (an int in [-2**63, 2**64); negative ones wrap as in
        PyTorch); returns the generator."""
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer, float)):
            raise TypeError(f"manual_seed: expected an int seed, got {type(seed).__name__}")
        seed = int(seed)
        if not -(1 << 63) <= seed <= _MASK64:
            raise ValueError(f"manual_seed: seed {seed} overflows 64 bits")
        self._seed = seed & _MASK64
        self._numpy = None   # (made on the first draw: ``import lucid`` needs no numpy.random)
        return self

    @property
    def _np(self):
        """The numpy generator this one is: PCG64 seeded with the seed, made when first
        needed."""
        g = self._numpy
        if g is None:
            g = self._numpy = np.random.Generator(np.random.PCG64(self._seed))
        return g

    def seed(self) -> int:
        """Seed from the operating system's entropy; returns the seed chosen."""
        seed = int.from_bytes(os.urandom(8), "little")
        self.manual_seed(seed)
        return seed

    def initial_seed(self) -> int:
        """The seed this generator was last seeded with."""
        return self._seed

    def get_state(self):
        """The whole state as an int64 tensor of 32-bit words; ``set_state`` restores it."""
        from .tensor import Tensor
        st = self._np.bit_generator.state
        words = (_words(self._seed, 2) + _words(st["state"]["state"], 4)
                 + _words(st["state"]["inc"], 4) + [int(st["has_uint32"]), int(st["uinteger"])])
        return Tensor._wrap(np.array(words, dtype=np.int64))

    def set_state(self, new_state) -> "Generator":
        """Restore a state from ``get_state``; returns the generator."""
        from .tensor import Tensor
        if not isinstance(new_state, Tensor) or new_state.dtype != "int64":
            raise TypeError(f"set_state: expected the int64 tensor get_state returns, got "
                            f"{_describe(new_state)}")
        words = [int(w) for w in np.asarray(new_state.numpy()).reshape(-1)]
        if len(words) != _STATE_WORDS or any(not 0 <= w <= 0xFFFFFFFF for w in words):
            raise RuntimeError(f"set_state: expected a state of {_STATE_WORDS} 32-bit words "
                               f"(as get_state returns), got shape {tuple(new_state.shape)}")
        bitgen = np.random.PCG64()
        bitgen.state = {"bit_generator": "PCG64",
                        "state": {"state": _join(words[2:6]), "inc": _join(words[6:10])},
                        "has_uint32": words[10], "uinteger": words[11]}
        self._seed, self._numpy = _join(words[0:2]), np.random.Generator(bitgen)
        return self

    def __repr__(self) -> str:
        return f"lucid.Generator(seed={self._seed})"


def _words(value: int, n: int) -> list:
    return [(value >> (32 * k)) & 0xFFFFFFFF for k in range(n)]


def _join(words) -> int:
    return sum(w << (32 * k) for k, w in enumerate(words))


def _describe(x) -> str:
    shape = getattr(x, "shape", None)
    return type(x).__name__ + (f" of dtype {x.dtype} and shape {tuple(shape)}" if shape is not None else "")


#: the generator random functions use when they are given none
default_generator = Generator()


def manual_seed(seed) -> Generator:
    """Seed the default generator (``torch.manual_seed``); returns it.

    >>> import lucid
    >>> _ = lucid.manual_seed(0); a = lucid.randn(2).numpy()
    >>> _ = lucid.manual_seed(0); bool((a == lucid.randn(2).numpy()).all())
    True
    """
    return default_generator.manual_seed(seed)


def seed(n=None) -> int:
    """``seed(n)`` seeds the default generator with ``n`` (lucid's older spelling of
    ``manual_seed``); ``seed()`` seeds it from the system's entropy, as ``torch.seed()``.
    Returns the seed."""
    if n is None:
        return default_generator.seed()
    default_generator.manual_seed(n)
    return default_generator.initial_seed()


def initial_seed() -> int:
    """The default generator's seed."""
    return default_generator.initial_seed()


def get_rng_state():
    """The default generator's state (``torch.get_rng_state``)."""
    return default_generator.get_state()


def set_rng_state(new_state) -> None:
    """Restore the default generator's state from ``get_rng_state``."""
    default_generator.set_state(new_state)


def resolve(generator, op: str) -> np.random.Generator:
    """The numpy generator behind ``generator=`` (the default one for None)."""
    return generator_of(generator, op)._np


def generator_of(generator, op: str) -> Generator:
    """The ``lucid.Generator`` ``generator=`` names (the default one for None)."""
    if generator is None:
        return default_generator
    if not isinstance(generator, Generator):
        raise TypeError(f"{op}: generator= must be a lucid.Generator, got {type(generator).__name__}")
    return generator


class KeySource:
    """What a compiled function that draws random numbers reads before each call: one
    fresh 64-bit key from ``generator``'s stream (``source() -> (key,)``), from which
    its graph's counter-based random ops compute their numbers (see
    ``lucid_ir.ops.random``). Drawing it advances the generator, so
    ``lucid.manual_seed`` before a run reproduces the run's sequence of results.

    >>> g = Generator().manual_seed(1)
    >>> draw = KeySource(g)
    >>> a = draw(); _ = g.manual_seed(1); a == draw() and a != draw()
    True
    """

    fresh = True  # a new value at every call (``lucid.compiled.ScalarSource`` keeps none)

    def __init__(self, generator: Generator):
        self.generator = generator

    def __call__(self) -> tuple:
        # read at every call: manual_seed replaces the numpy generator
        return (int(self.generator._np.integers(-(1 << 63), (1 << 63) - 1, endpoint=True, dtype=np.int64)),)


def generator() -> np.random.Generator:
    """The default generator's numpy generator (what ``nn`` initialisers draw from)."""
    return default_generator._np
