"""`TxRandom`: the random generator each transaction gets (`tx.rng`).

Every transaction draws from its own generator, seeded with 64 random bits from
its worker's stream, so a retry repeats the same choices and one transaction's
draws never depend on another's. Seeding Python's Mersenne Twister costs about
as much as everything else the harness does for a transaction, so `TxRandom` is a
`random.Random` whose bits come first from the seed itself (64 random bits: a
typical transaction needs fewer) and then from SplitMix64 seeded with it (Steele,
Lea and Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014).
Every method of `random.Random` works on it (randint, choice, shuffle, sample,
uniform, gauss, ...); it is not for cryptography.
"""

from __future__ import annotations

import random

_MASK = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15


class TxRandom(random.Random):
    """Random bits from a 64-bit seed, then from SplitMix64; `TxRandom(seed)`."""

    # Slots: an instance of a subclass of random.Random keeps its attributes in a
    # plain __dict__ that CPython 3.11 cannot specialise for; slots read three
    # times faster, and the state is read on every draw.
    __slots__ = ("_state", "_bits", "_nbits", "gauss_next")

    def __init__(self, seed: int = 0):  # no super().__init__: that would seed a Mersenne Twister
        self.seed(seed)

    def reset(self, seed: int) -> None:
        """Back to the start of `seed`'s sequence. `seed` must be 64 random bits (the
        runner draws it from the worker's stream): its bits are the first ones drawn.
        `TxRandom(seed)` and `seed()` accept any seed and mix it first."""
        seed &= _MASK
        self._state = seed  # SplitMix64's counter
        self._bits = seed  # unused random bits, taken from the low end
        self._nbits = 64
        self.gauss_next = None

    def seed(self, a=None, version: int = 2) -> None:
        if a is None:
            a = random.SystemRandom().getrandbits(64)
        elif not isinstance(a, int):
            a = int.from_bytes(str(a).encode(), "big")  # deterministic, unlike hash(str)
        self._state = a & _MASK
        self.reset(self._next64())

    def getstate(self):
        return (self._state, self._bits, self._nbits, self.gauss_next)

    def setstate(self, state) -> None:
        self._state, self._bits, self._nbits, self.gauss_next = state

    def _next64(self) -> int:
        """SplitMix64's next output."""
        z = self._state = (self._state + _GAMMA) & _MASK
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return z ^ (z >> 31)

    def getrandbits(self, k: int) -> int:
        if k <= self._nbits:
            if k < 0:
                raise ValueError("number of bits must be non-negative")
            r = self._bits & ((1 << k) - 1)
            self._bits >>= k
            self._nbits -= k
            return r
        r, n = self._bits, self._nbits  # what is left, then whole new words
        while n + 64 <= k:
            r |= self._next64() << n
            n += 64
        if n < k:
            word = self._next64()
            need = k - n
            r |= (word & ((1 << need) - 1)) << n
            self._bits, self._nbits = word >> need, 64 - need
        else:
            self._bits, self._nbits = 0, 0
        return r

    def random(self) -> float:
        """A float in [0.0, 1.0) with 53 random bits."""
        return self.getrandbits(53) * (1.0 / 9007199254740992.0)

    def randint(self, a: int, b: int) -> int:
        """Like random.Random.randint: an int in [a, b], uniform (by rejection).
        Most draws in a scenario are small randints: they are served from the
        unused bits without a further call."""
        if type(a) is not int or type(b) is not int or b < a:
            return super().randint(a, b)  # its own checks and messages
        n = b - a + 1
        k = n.bit_length()
        while True:
            left = self._nbits
            if k <= left:
                bits = self._bits
                r = bits & ((1 << k) - 1)
                self._bits = bits >> k
                self._nbits = left - k
            else:
                r = self.getrandbits(k)
            if r < n:
                return a + r
