"""Bloom filters over the distinct values of a column in one data file.

A filter answers "can this file hold value v?" with no false negatives; its size is
chosen from the number of distinct values and the configured false-positive rate.
Values hash through a canonical text form, so ``12087792`` and ``"12087792"`` agree:
the catalog stores index values as text too.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass

_MASK64 = (1 << 64) - 1


def canonical(value: object) -> bytes:
    """The bytes a value is hashed and indexed by.

    >>> canonical(12087792), canonical("EUR.USD"), canonical(5.0)
    (b'12087792', b'EUR.USD', b'5')
    """
    if isinstance(value, bool):
        raise TypeError("booleans are not indexed")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).encode("utf-8")


def _hash_pair(value: object) -> tuple[int, int]:
    digest = hashlib.blake2b(canonical(value), digest_size=16).digest()
    h1 = int.from_bytes(digest[:8], "little")
    h2 = int.from_bytes(digest[8:], "little") | 1  # odd, so strides cover every bit
    return h1, h2


def bloom_size(distinct: int, fpp: float) -> tuple[int, int]:
    """Bits and hash count for `distinct` values at false-positive rate `fpp`.

    >>> bloom_size(1000, 0.01)
    (9592, 7)
    """
    if not 0 < fpp < 1:
        raise ValueError(f"false-positive rate must be between 0 and 1, got {fpp}")
    n = max(distinct, 1)
    bits = max(64, math.ceil(-n * math.log(fpp) / (math.log(2) ** 2)))
    bits = (bits + 7) // 8 * 8
    hashes = max(1, round(bits / n * math.log(2)))
    return bits, hashes


@dataclass(frozen=True)
class BloomFilter:
    """An immutable Bloom filter; `bits` is little-endian bit order within bytes."""

    num_bits: int
    num_hashes: int
    bits: bytes

    @classmethod
    def build(cls, values: Iterable[object], fpp: float) -> BloomFilter:
        """A filter holding every (non-null) value of `values`.

        >>> f = BloomFilter.build([1, 2, 3], 0.01)
        >>> all(f.might_contain(v) for v in (1, 2, 3))
        True
        """
        distinct = {v for v in values if v is not None}
        num_bits, num_hashes = bloom_size(len(distinct), fpp)
        array = bytearray(num_bits // 8)
        for value in distinct:
            for index in _indexes(value, num_bits, num_hashes):
                array[index >> 3] |= 1 << (index & 7)
        return cls(num_bits, num_hashes, bytes(array))

    def might_contain(self, value: object) -> bool:
        """False when `value` is certainly not in the file; True when it may be."""
        bits = self.bits
        return all(bits[i >> 3] >> (i & 7) & 1 for i in _indexes(value, self.num_bits, self.num_hashes))


def _indexes(value: object, num_bits: int, num_hashes: int) -> list[int]:
    h1, h2 = _hash_pair(value)
    return [((h1 + i * h2) & _MASK64) % num_bits for i in range(num_hashes)]
