// dllm convert / dllm quantize: a model folder <-> a GGUF file, and GGUF to
// GGUF in another storage type, one tensor in memory at a time.
#include "dllm/convert.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "base/half.h"
#include "base/thread_pool.h"
#include "dllm/config.h"
#include "dllm/error.h"
#include "dllm/files.h"
#include "dllm/tokenizer.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "formats/tensor_store.h"
#include "model/check_store.h"
#include "model/gguf_model.h"
#include "model/rope.h"
#include "model/save.h"
#include "model/weights.h"
#include "ops/ops.h"
#include "ops/quant.h"
#include "tokenizer/gguf_vocab.h"

namespace dllm {

using json = nlohmann::json;

namespace {

bool IsDir(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool EndsWithGguf(const std::string& p) {
  if (p.size() < 5) return false;
  std::string tail = p.substr(p.size() - 5);
  for (char& ch : tail) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  return tail == ".gguf";
}

std::string ShapeStr(const std::vector<int64_t>& s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i)
    out += (i ? ", " : "") + std::to_string(s[i]);
  return out + ")";
}

std::string Basename(const std::string& p) {
  std::string s = p;
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  const size_t slash = s.rfind('/');
  return slash == std::string::npos ? s : s.substr(slash + 1);
}

std::string ParentDir(const std::string& p) {
  const size_t slash = p.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : p.substr(0, slash);
}

// A model to convert: its config, its tensors and how they are named.
struct Source {
  std::string path;
  ModelConfig c;
  std::unique_ptr<TensorStore> store;
  NameTable names = NameTable::kHf;
  bool permuted = false;  // wq/wk rows in llama.cpp's interleaved order
};

// Opens and checks a model the way Model::Load does (every tensor present,
// of the config's shape, of a dtype we read; nothing unused; finite), so a
// conversion never writes what the loader would refuse.
Source OpenSource(const std::string& path) {
  Source s;
  s.path = path;
  if (IsGgufPath(path)) {
    s.store = TensorStore::Open(path);
    s.names = NameTable::kGguf;
    s.c = ConfigFromGguf(*s.store->gguf());
    s.permuted =
        GgufArchPermutesQK(s.store->gguf()->GetString("general.architecture"));
  } else {
    DLLM_CHECK(IsDir(path), path,
               ": not a model folder (config.json + safetensors) or a GGUF "
               "file");
    s.c = LoadModelConfig(path + "/config.json");
    s.store = TensorStore::Open(path);
  }
  MatchStoredSwitches(s.c, *s.store, s.names);
  const char* cfg =
      s.names == NameTable::kGguf ? "the GGUF metadata" : "config.json";
  for (const TensorSpec& t : ListTensors(s.c, s.names)) {
    const TensorView* v = s.store->Find(t.name);
    DLLM_CHECK(v != nullptr, s.store->origin(), ": tensor '", t.name,
               "' is missing (", cfg, " wants ", ShapeStr(t.shape), ")");
    DLLM_CHECK(v->shape == t.shape, s.store->origin(), ": tensor '", t.name,
               "' has shape ", ShapeStr(v->shape), ", ", cfg, " wants ",
               ShapeStr(t.shape));
    DLLM_CHECK(v->dtype == DType::kF32 || v->dtype == DType::kF16 ||
                   v->dtype == DType::kBF16 || IsQuantized(v->dtype),
               s.store->origin(), ": tensor '", t.name, "' has dtype ",
               DTypeName(v->dtype), " (expected a float or block type)");
  }
  CheckStoredTensors(s.c, *s.store, s.names);
  return s;
}

// Parses --outtype; *automatic for "auto".
void ParseOutType(const std::string& name, DType* t, bool* automatic) {
  std::string n = name;
  for (char& ch : n) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  *automatic = n == "auto";
  if (*automatic) return;
  static const std::pair<const char*, DType> kTypes[] = {
      {"f32", DType::kF32},   {"f16", DType::kF16},   {"bf16", DType::kBF16},
      {"q8_0", DType::kQ8_0}, {"q4_0", DType::kQ4_0}, {"q4_k", DType::kQ4_K},
      {"q6_k", DType::kQ6_K}};
  for (const auto& [s, d] : kTypes)
    if (n == s) {
      *t = d;
      return;
    }
  Fail("convert: unknown outtype '", name, "' (expected ", ConvertOutTypes(),
       ")");
}

// llama.cpp's general.file_type of a file whose matrices are `t`.
uint32_t FileType(DType t) {
  switch (t) {
    case DType::kF32:
      return 0;
    case DType::kF16:
      return 1;
    case DType::kQ4_0:
      return 2;
    case DType::kQ8_0:
      return 7;
    case DType::kQ4_K:
      return 14;  // MOSTLY_Q4_K_S: Q4_K matrices
    case DType::kQ6_K:
      return 18;
    case DType::kBF16:
      return 32;
    default:
      return 0;
  }
}

// The storage of one tensor (ConvertOptions::outtype explains the rules).
DType ChooseType(const TensorSpec& spec, const TensorView& src, bool automatic,
                 DType want, bool to_gguf, bool is_head) {
  if (spec.role == TensorRole::kNorm || spec.role == TensorRole::kBias)
    return DType::kF32;
  if (automatic)
    return IsQuantized(src.dtype) && !to_gguf ? DType::kF32 : src.dtype;
  DType t = want;
  // llama.cpp quantizes the output head (and a tied embedding, which is
  // the head) with more bits: Q6_K, unless Q8_0 was asked for.
  if (IsQuantized(want) && is_head && want != DType::kQ8_0) t = DType::kQ6_K;
  const int64_t cols = spec.shape.back();
  if (IsQuantized(t) && cols % DTypeBlock(t) != 0)
    t = cols % DTypeBlock(DType::kQ8_0) == 0 ? DType::kQ8_0 : DType::kF16;
  return t;
}

// Writes src converted to `type` into dst (TensorBytes(type, shape) bytes),
// rows spread over the thread pool; with rope_heads > 0 the rows (of a
// matrix, or the elements of a bias) are reordered for (to_gguf) or back
// from llama.cpp's interleaved RoPE.
void ConvertTensor(const TensorView& src, DType type, int rope_heads,
                   bool to_gguf, void* dst) {
  const int64_t cols = src.shape.empty() ? 1 : src.shape.back();
  const int64_t rows = cols ? src.numel() / cols : 0;
  const size_t in_row = DTypeBytes(src.dtype, cols);
  const size_t out_row = DTypeBytes(type, cols);
  std::vector<uint8_t> tmp;
  uint8_t* out = static_cast<uint8_t*>(dst);
  if (rope_heads > 0) {
    tmp.resize(size_t(rows) * out_row);
    out = tmp.data();
  }
  ParallelFor(size_t(rows), 1, [&](size_t b, size_t e, int) {
    std::vector<float> f32(static_cast<size_t>(cols));
    for (size_t r = b; r < e; ++r) {
      const uint8_t* in = src.data + r * in_row;
      uint8_t* o = out + r * out_row;
      if (src.dtype == type) {
        std::memcpy(o, in, out_row);
        continue;
      }
      ops::ToF32(src.dtype, in, cols, f32.data());
      if (type == DType::kF32) {
        std::memcpy(o, f32.data(), out_row);
      } else if (type == DType::kF16 || type == DType::kBF16) {
        uint16_t* h = reinterpret_cast<uint16_t*>(o);
        for (int64_t j = 0; j < cols; ++j)
          h[j] = type == DType::kF16 ? F32ToF16(f32[size_t(j)])
                                     : F32ToBf16(f32[size_t(j)]);
      } else {
        ops::QuantizeRow(type, f32.data(), cols, o);
      }
    }
  });
  if (rope_heads > 0) {
    if (src.shape.size() == 1)  // a bias: its elements are the rows
      PermuteRopeRows(tmp.data(), dst, cols, DTypeSize(type), rope_heads,
                      to_gguf);
    else
      PermuteRopeRows(tmp.data(), dst, rows, out_row, rope_heads, to_gguf);
  }
}

// What is written for one tensor of the list.
struct Planned {
  TensorSpec spec;        // destination name and shape
  const TensorView* src;  // source view
  DType type;
};

std::vector<TensorToWrite> MakeWrites(const std::vector<Planned>& plan,
                                      bool permute, bool to_gguf,
                                      const ConvertOptions& o,
                                      ConvertResult* result) {
  std::vector<TensorToWrite> out;
  const size_t n = plan.size();
  for (size_t i = 0; i < n; ++i) {
    const Planned& p = plan[i];
    TensorToWrite t;
    t.name = p.spec.name;
    t.dtype = p.type;
    t.shape = p.spec.shape;
    const int heads = permute ? p.spec.rope_heads : 0;
    t.fill = [&o, &p, i, n, heads, to_gguf](void* dst) {
      if (o.progress)
        o.progress(StrCat("[", i + 1, "/", n, "] ", p.spec.name, " ",
                          ShapeStr(p.spec.shape), " ", DTypeName(p.src->dtype),
                          " -> ", DTypeName(p.type),
                          heads ? " (rows reordered for RoPE)" : ""));
      ConvertTensor(*p.src, p.type, heads, to_gguf, dst);
    };
    result->tensors += 1;
    result->bytes += TensorBytes(p.type, p.spec.shape);
    out.push_back(std::move(t));
  }
  return out;
}

// The plan of every tensor: source views named by the source's table,
// destination names by `dst_names`, types by the options.
std::vector<Planned> Plan(const Source& s, NameTable dst_names, bool automatic,
                          DType want, bool to_gguf) {
  const std::vector<TensorSpec> from = ListTensors(s.c, s.names);
  const std::vector<TensorSpec> to = ListTensors(s.c, dst_names);
  DLLM_ASSERT(from.size() == to.size());
  std::vector<Planned> plan;
  for (size_t i = 0; i < from.size(); ++i) {
    const TensorView* v = s.store->Find(from[i].name);
    DLLM_ASSERT(v != nullptr);
    const bool head =
        from[i].name == OutputHeadName(s.c, s.names) ||
        (s.c.tie_embeddings && from[i].name == EmbeddingName(s.c, s.names));
    plan.push_back(
        {to[i], v, ChooseType(from[i], *v, automatic, want, to_gguf, head)});
  }
  return plan;
}

void CheckDestination(const std::string& dst, bool folder, bool force) {
  if (force) return;
  if (folder) {
    for (const char* f : {"config.json", "model.safetensors"})
      DLLM_CHECK(!FileExists(dst + "/" + f), "convert: ", dst,
                 " already holds a model (", f,
                 "): pass --force to overwrite it, or choose another folder");
  } else {
    DLLM_CHECK(!FileExists(dst), "convert: ", dst,
               " already exists: pass --force to overwrite it");
  }
}

// The chat template text of a folder, as stored (unparsed: a template we
// cannot render may still serve llama.cpp).
std::string FolderChatTemplate(const std::string& dir) {
  if (FileExists(dir + "/chat_template.jinja"))
    return ReadFileToString(dir + "/chat_template.jinja");
  const std::string cfg = dir + "/tokenizer_config.json";
  if (!FileExists(cfg)) return "";
  json j = json::parse(ReadFileToString(cfg), nullptr, false);
  if (!j.is_object() || !j.contains("chat_template")) return "";
  const json& ct = j["chat_template"];
  if (ct.is_string()) return ct.get<std::string>();
  if (ct.is_array())
    for (const json& e : ct)
      if (e.is_object() && e.value("name", "") == "default" &&
          e.contains("template") && e["template"].is_string())
        return e["template"].get<std::string>();
  return "";
}

bool HasKey(const GgufMetadata& m, const std::string& k) {
  for (const auto& kv : m)
    if (kv.first == k) return true;
  return false;
}

ConvertResult FolderToGguf(const std::string& src, const std::string& dst,
                           const ConvertOptions& o) {
  ConvertResult result;
  bool automatic = false;
  DType want = DType::kF32;
  ParseOutType(o.outtype, &want, &automatic);
  CheckDestination(dst, false, o.force);
  Source s = OpenSource(src);
  const ModelConfig& c = s.c;
  const std::string arch = GgufArchName(c);
  std::vector<Planned> plan =
      Plan(s, NameTable::kGguf, automatic, want, /*to_gguf=*/true);

  GgufMetadata cfg;
  AddConfigMetadata(c, &cfg);
  GgufMetadata m;
  m.push_back(cfg[0]);  // general.architecture first, as llama.cpp writes
  m.emplace_back("general.name", GgufValue::String(Basename(src)));
  // The matrices' type (wq's: the head may differ), as llama.cpp reports it.
  m.emplace_back("general.file_type", GgufValue::U32(FileType(plan[2].type)));
  m.emplace_back("general.quantization_version", GgufValue::U32(2));
  m.insert(m.end(), cfg.begin() + 1, cfg.end());

  const std::string tok_path = src + "/tokenizer.json";
  if (FileExists(tok_path)) {
    const std::string text = ReadFileToString(tok_path);
    const Tokenizer tok = Tokenizer::FromJson(text, tok_path);  // it loads
    // Special tokens the config does not name, from tokenizer_config.json.
    const std::string tc = src + "/tokenizer_config.json";
    if (FileExists(tc)) {
      json j = json::parse(ReadFileToString(tc), nullptr, false);
      for (const auto& [field, key] :
           {std::pair<const char*, const char*>{"bos_token", "bos_token_id"},
            {"eos_token", "eos_token_id"},
            {"pad_token", "padding_token_id"},
            {"mask_token", "mask_token_id"}}) {
        if (!j.is_object() || !j.contains(field)) continue;
        const json& v = j[field];
        const std::string t = v.is_string()
                                  ? v.get<std::string>()
                                  : (v.is_object() && v.contains("content") &&
                                             v["content"].is_string()
                                         ? v["content"].get<std::string>()
                                         : "");
        const int32_t id = t.empty() ? -1 : tok.TokenId(t);
        const std::string k = std::string("tokenizer.ggml.") + key;
        if (id >= 0 && id < c.vocab_size && !HasKey(m, k))
          m.emplace_back(k, GgufValue::U32(uint32_t(id)));
      }
    }
    AddTokenizerMetadata(text, tok_path, c.vocab_size, &m, &result.warnings);
  } else {
    result.warnings.push_back(src +
                              ": no tokenizer.json, so the GGUF file has no "
                              "tokenizer");
  }
  const std::string tmpl = FolderChatTemplate(src);
  if (!tmpl.empty())
    m.emplace_back("tokenizer.chat_template", GgufValue::String(tmpl));
  const std::string gen = src + "/generation_config.json";
  if (FileExists(gen)) {
    const std::string text = ReadFileToString(gen);
    json j = json::parse(text, nullptr, false);
    DLLM_CHECK(!j.is_discarded() && j.is_object(), gen,
               ": expected a JSON object");
    m.emplace_back("dllm.generation_config", GgufValue::String(j.dump()));
  }
  if (c.block_size > 0)
    result.warnings.push_back(StrCat(
        src, ": block diffusion (blocks of ", c.block_size,
        "): dllm.block_size is ours, so llama.cpp runs the model with full "
        "attention"));
  if (c.qkv_bias && arch == "llada")
    result.warnings.push_back(
        src +
        ": q/k/v biases: llama.cpp's llada architecture has none and "
        "will refuse the file (dllm reads it)");

  std::vector<TensorToWrite> writes =
      MakeWrites(plan, GgufArchPermutesQK(arch), true, o, &result);
  CheckFreeSpace(ParentDir(dst), result.bytes + (64u << 20), Basename(dst));
  WriteGguf(dst, m, writes);
  return result;
}

ConvertResult GgufToGguf(const std::string& src, const std::string& dst,
                         const ConvertOptions& o) {
  ConvertResult result;
  bool automatic = false;
  DType want = DType::kF32;
  ParseOutType(o.outtype, &want, &automatic);
  CheckDestination(dst, false, o.force);
  Source s = OpenSource(src);
  std::vector<Planned> plan =
      Plan(s, NameTable::kGguf, automatic, want, /*to_gguf=*/true);
  for (const Planned& p : plan)
    if (IsQuantized(p.src->dtype) && p.src->dtype != p.type) {
      result.warnings.push_back(StrCat(
          src, ": ", p.spec.name, " is already ", DTypeName(p.src->dtype),
          ": requantizing it loses more than quantizing the original "
          "weights"));
      break;
    }
  GgufMetadata m;
  for (const auto& kv : s.store->gguf()->metadata()) {
    if (kv.first == "general.alignment") continue;  // ours: 32
    if (kv.first == "general.file_type") {
      m.emplace_back(kv.first, GgufValue::U32(FileType(plan[2].type)));
      continue;
    }
    m.push_back(kv);
  }
  if (!HasKey(m, "general.file_type"))
    m.emplace_back("general.file_type", GgufValue::U32(FileType(plan[2].type)));
  // Same architecture, so the rows stay in the file's order.
  std::vector<TensorToWrite> writes = MakeWrites(plan, false, true, o, &result);
  CheckFreeSpace(ParentDir(dst), result.bytes + (64u << 20), Basename(dst));
  WriteGguf(dst, m, writes);
  return result;
}

ConvertResult GgufToFolder(const std::string& src, const std::string& dst,
                           const ConvertOptions& o) {
  ConvertResult result;
  bool automatic = false;
  DType want = DType::kF32;
  ParseOutType(o.outtype, &want, &automatic);
  DLLM_CHECK(automatic || !IsQuantized(want),
             "convert: a model folder "
             "(safetensors) cannot hold ",
             DTypeName(want),
             ": write a .gguf file, or choose f32, f16 or bf16");
  CheckDestination(dst, true, o.force);
  Source s = OpenSource(src);
  const GgufFile& f = *s.store->gguf();
  std::vector<Planned> plan =
      Plan(s, NameTable::kHf, automatic, want, /*to_gguf=*/false);
  if (mkdir(dst.c_str(), 0755) != 0 && errno != EEXIST)
    Fail(dst, ": cannot create folder: ", std::strerror(errno));
  std::vector<TensorToWrite> writes =
      MakeWrites(plan, s.permuted, false, o, &result);
  CheckFreeSpace(dst, result.bytes + (64u << 20), "model.safetensors");

  // Text files first (small), so a failure there leaves no half model.
  std::string tokenizer_json, tokenizer_config;
  if (GgufHasTokenizer(f)) {
    tokenizer_json = GgufTokenizerJson(f);
    Tokenizer::FromJson(tokenizer_json, src);  // it loads
  }
  json tc = json::object();
  if (f.Find("tokenizer.chat_template"))
    tc["chat_template"] = f.GetString("tokenizer.chat_template");
  if (f.Find("tokenizer.ggml.tokens")) {
    const std::vector<std::string>& tokens =
        f.GetStrings("tokenizer.ggml.tokens");
    for (const auto& [key, field] :
         {std::pair<const char*, const char*>{"bos_token_id", "bos_token"},
          {"eos_token_id", "eos_token"},
          {"padding_token_id", "pad_token"},
          {"mask_token_id", "mask_token"}}) {
      const std::string k = std::string("tokenizer.ggml.") + key;
      if (!f.Find(k)) continue;
      const int64_t id = f.GetInt(k, 0, INT64_MAX);
      if (size_t(id) < tokens.size()) tc[field] = tokens[size_t(id)];
    }
  }
  if (!tc.empty())
    tokenizer_config =
        tc.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
  std::string generation;
  if (f.Find("dllm.generation_config")) {
    json j = json::parse(f.GetString("dllm.generation_config"), nullptr, false);
    DLLM_CHECK(!j.is_discarded() && j.is_object(), src,
               ": dllm.generation_config is not a JSON object");
    generation = j.dump(2) + "\n";
  }

  WriteSafetensors(dst + "/model.safetensors", writes, {{"format", "pt"}});
  const std::string config = ModelConfigToJson(s.c);
  WriteFileAtomic(dst + "/config.json", config.data(), config.size());
  if (!tokenizer_json.empty())
    WriteFileAtomic(dst + "/tokenizer.json", tokenizer_json.data(),
                    tokenizer_json.size());
  else
    result.warnings.push_back(src + ": no tokenizer in this GGUF file");
  if (!tokenizer_config.empty())
    WriteFileAtomic(dst + "/tokenizer_config.json", tokenizer_config.data(),
                    tokenizer_config.size());
  if (!generation.empty())
    WriteFileAtomic(dst + "/generation_config.json", generation.data(),
                    generation.size());
  return result;
}

}  // namespace

const char* ConvertOutTypes() {
  return "f32, f16, bf16, q8_0, q4_0, q4_k, q6_k or auto";
}

ConvertResult ConvertModel(const std::string& src, const std::string& dst,
                           const ConvertOptions& o) {
  DLLM_CHECK(FileExists(src), "convert: ", src, ": no such file or folder");
  const bool src_gguf = IsGgufPath(src);
  DLLM_CHECK(src_gguf || IsDir(src), "convert: ", src,
             ": expected a model folder (config.json + safetensors) or a GGUF "
             "file");
  std::string a = src, b = dst;
  while (a.size() > 1 && a.back() == '/') a.pop_back();
  while (b.size() > 1 && b.back() == '/') b.pop_back();
  DLLM_CHECK(a != b, "convert: the source and the destination are the same (",
             src, ")");
  const bool dst_gguf = EndsWithGguf(dst) || IsGgufPath(dst);
  if (!src_gguf) {
    DLLM_CHECK(dst_gguf, "convert: ", src, " is a folder, so the destination ",
               dst, " must be a .gguf file");
    return FolderToGguf(src, dst, o);
  }
  if (dst_gguf) return GgufToGguf(src, dst, o);
  return GgufToFolder(src, dst, o);
}

}  // namespace dllm
