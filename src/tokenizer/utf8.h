// UTF-8 helpers and the GPT-2 byte-to-unicode map used by byte-level BPE.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace dllm::utf8 {

// Decodes one code point at s[i]; returns its length (1..4) and stores the
// code point, or returns 0 when the bytes at i are not a well-formed
// sequence (then *len_bad holds the length of the maximal ill-formed
// subpart, at least 1).
int Decode(std::string_view s, size_t i, uint32_t* cp, int* len_bad);

// Appends the UTF-8 encoding of `cp`.
void Append(std::string* out, uint32_t cp);

// True when all of `s` is well-formed UTF-8.
bool IsValid(std::string_view s);

// Length of a trailing sequence that is a proper prefix of some well-formed
// character (0 when none): these bytes may still be completed.
size_t IncompleteTail(std::string_view s);

// GPT-2's bytes_to_unicode(): printable Latin-1 bytes map to themselves, the
// others to U+0100 and up, so every byte is a visible character.
struct ByteMap {
  std::array<uint32_t, 256> byte_to_cp;
  std::array<std::string, 256> byte_to_utf8;
  // code point (< 0x200) -> byte, -1 if not in the map.
  std::array<int16_t, 0x200> cp_to_byte;
};
const ByteMap& GetByteMap();

// Maps raw bytes to their byte-level string ("Ġthe" for " the").
std::string BytesToByteLevel(std::string_view bytes);
// Inverse: returns false (and leaves *out partial) if some character of `s` is
// not in the map.
bool ByteLevelToBytes(std::string_view s, std::string* out);

}  // namespace dllm::utf8
