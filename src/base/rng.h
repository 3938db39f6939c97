// Counter-based randomness: a value depends only on (seed, stream, index), so
// results do not depend on thread count or on the order work is done in.
#pragma once

#include <cmath>
#include <cstdint>

namespace dllm {

// SplitMix64 finaliser: a strong 64-bit mix.
inline uint64_t Mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

inline uint64_t RandomBits(uint64_t seed, uint64_t stream, uint64_t index) {
  return Mix64(Mix64(Mix64(seed) ^ stream) ^ index);
}

// Uniform in the open interval (0, 1), with 53 random bits.
inline double RandomUniform(uint64_t seed, uint64_t stream, uint64_t index) {
  return (double(RandomBits(seed, stream, index) >> 11) + 0.5) *
         (1.0 / 9007199254740992.0);
}

// Standard normal (Box-Muller over two counter-based uniforms).
inline double RandomNormal(uint64_t seed, uint64_t stream, uint64_t index) {
  double u1 = RandomUniform(seed, stream, 2 * index);
  double u2 = RandomUniform(seed, stream, 2 * index + 1);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

}  // namespace dllm
