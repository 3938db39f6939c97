#include "tokenizer/utf8.h"

namespace dllm::utf8 {

int Decode(std::string_view s, size_t i, uint32_t* cp, int* len_bad) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  size_t n = s.size();
  uint8_t b0 = p[i];
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  }
  int need;
  uint32_t c;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
    c = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    c = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    c = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    *len_bad = 1;
    return 0;
  }
  for (int k = 1; k <= need; ++k) {
    if (i + k >= n) {
      *len_bad = k;
      return 0;
    }
    uint8_t b = p[i + k];
    uint8_t l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (b < l || b > h) {
      *len_bad = k;
      return 0;
    }
    c = (c << 6) | (b & 0x3F);
  }
  *cp = c;
  return need + 1;
}

void Append(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool IsValid(std::string_view s) {
  size_t i = 0, n = s.size();
  while (i < n) {
    // Fast path over ASCII, 8 bytes at a time.
    while (i + 8 <= n) {
      uint64_t w;
      __builtin_memcpy(&w, s.data() + i, 8);
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= n) break;
    if (static_cast<uint8_t>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    uint32_t cp;
    int bad;
    int len = Decode(s, i, &cp, &bad);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

size_t IncompleteTail(std::string_view s) {
  // A valid-so-far prefix is at most 3 bytes long.
  size_t n = s.size();
  for (size_t k = 1; k <= 3 && k <= n; ++k) {
    size_t start = n - k;
    uint8_t b0 = static_cast<uint8_t>(s[start]);
    if (b0 < 0xC0) continue;  // not a lead byte
    size_t need = b0 >= 0xC2 && b0 <= 0xDF   ? 2
                  : b0 >= 0xE0 && b0 <= 0xEF ? 3
                  : b0 >= 0xF0 && b0 <= 0xF4 ? 4
                                             : 0;
    if (need <= k) return 0;  // invalid lead byte, or a complete sequence
    uint32_t cp;
    int bad = 0;
    int len = Decode(s, start, &cp, &bad);
    // Incomplete when decoding ran off the end with all present bytes valid.
    if (len == 0 && bad == static_cast<int>(k)) return k;
    return 0;
  }
  return 0;
}

static ByteMap MakeByteMap() {
  ByteMap m;
  m.cp_to_byte.fill(-1);
  int extra = 0;
  for (int b = 0; b < 256; ++b) {
    bool keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    uint32_t cp = keep ? b : 256 + extra++;
    m.byte_to_cp[b] = cp;
    m.cp_to_byte[cp] = static_cast<int16_t>(b);
    std::string s;
    Append(&s, cp);
    m.byte_to_utf8[b] = s;
  }
  return m;
}

const ByteMap& GetByteMap() {
  static const ByteMap m = MakeByteMap();
  return m;
}

std::string BytesToByteLevel(std::string_view bytes) {
  const ByteMap& m = GetByteMap();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) out += m.byte_to_utf8[c];
  return out;
}

bool ByteLevelToBytes(std::string_view s, std::string* out) {
  const ByteMap& m = GetByteMap();
  size_t i = 0;
  while (i < s.size()) {
    uint32_t cp;
    int bad;
    int len = Decode(s, i, &cp, &bad);
    if (len == 0 || cp >= 0x200 || m.cp_to_byte[cp] < 0) return false;
    out->push_back(static_cast<char>(m.cp_to_byte[cp]));
    i += len;
  }
  return true;
}

}  // namespace dllm::utf8
