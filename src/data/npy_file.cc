#include "data/npy_file.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <type_traits>

#include "data/mock_values.h"
#include "data/sampling.h"
#include "data/utf8.h"

namespace datasite::data::internal {
namespace {

constexpr std::string_view kMagic = "\x93NUMPY";
constexpr size_t kChunkBytes = kIoBufferSize;  // A multiple of every item size.

// Shows untrusted header text in a message: printable ASCII only, and not too much of it.
std::string Shown(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 40)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (s.size() > 40) out += "...";
  return out;
}

Status HeaderError(const std::string& what) {
  return InvalidArgumentError("not a valid .npy header: " + what);
}

// A cursor over the header's Python literal.
class Literal {
 public:
  explicit Literal(std::string_view text) : s_(text) {}

  void SkipSpace() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }
  bool AtEnd() const { return i_ == s_.size(); }
  size_t pos() const { return i_; }
  char Peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  bool Consume(char c) {
    SkipSpace();
    if (Peek() != c) return false;
    ++i_;
    return true;
  }
  bool ConsumeWord(std::string_view word) {
    SkipSpace();
    if (s_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }
  // A string in single or double quotes, without escapes (the header never needs them).
  Result<std::string> String() {
    SkipSpace();
    char quote = Peek();
    if (quote != '\'' && quote != '"') return HeaderError("expected a quoted string");
    size_t end = s_.find(quote, i_ + 1);
    if (end == std::string_view::npos) return HeaderError("a string is not closed");
    std::string value(s_.substr(i_ + 1, end - i_ - 1));
    if (value.find('\\') != std::string::npos) return HeaderError("unexpected '\\' in a string");
    i_ = end + 1;
    return value;
  }
  Result<bool> Bool() {
    if (ConsumeWord("True")) return true;
    if (ConsumeWord("False")) return false;
    return HeaderError("'fortran_order' must be True or False");
  }
  // A tuple of non-negative integers: (), (3,), (3, 4) — Python 2's 3L too.
  Result<std::vector<uint64_t>> Shape() {
    std::vector<uint64_t> dims;
    if (!Consume('(')) return HeaderError("'shape' must be a tuple like (3, 4)");
    for (;;) {
      if (Consume(')')) return dims;
      SkipSpace();
      if (Peek() < '0' || Peek() > '9')
        return HeaderError("'shape' must hold non-negative integers");
      uint64_t d = 0;
      while (Peek() >= '0' && Peek() <= '9') {
        uint64_t digit = static_cast<uint64_t>(s_[i_++] - '0');
        if (d > (std::numeric_limits<uint64_t>::max() - digit) / 10) {
          return HeaderError("a dimension of 'shape' is too large");
        }
        d = d * 10 + digit;
      }
      if (Peek() == 'L') ++i_;
      dims.push_back(d);
      if (dims.size() > 64) return HeaderError("'shape' has more than 64 dimensions");
      if (!Consume(',')) {
        if (Consume(')')) return dims;
        return HeaderError("'shape' must be a tuple like (3, 4)");
      }
    }
  }

 private:
  std::string_view s_;
  size_t i_ = 0;
};

// The count of a sized code's tail ("5" of "U5"): 1 to 2^31, or 0 when it is not one.
uint64_t SizeOf(std::string_view digits) {
  if (digits.empty() || digits.size() > 10 || digits[0] == '0') return 0;
  uint64_t n = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return 0;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  return n <= (uint64_t{1} << 31) ? n : 0;
}

// Whether `rest` is "M8" or "m8" with an optional "[unit]" (an optional count, then Y, M, W, D, h,
// m, s, ms, us, ns, ps, fs or as).
bool IsDatetimeCode(std::string_view rest) {
  if (rest.size() < 2 || (rest[0] != 'M' && rest[0] != 'm') || rest[1] != '8') return false;
  rest.remove_prefix(2);
  if (rest.empty()) return true;
  if (rest.front() != '[' || rest.back() != ']') return false;
  std::string_view unit = rest.substr(1, rest.size() - 2);
  size_t digits = 0;
  while (digits < unit.size() && unit[digits] >= '0' && unit[digits] <= '9') ++digits;
  if (digits > 0 && SizeOf(unit.substr(0, digits)) == 0) return false;
  unit.remove_prefix(digits);
  for (std::string_view u : {"Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns", "ps", "fs", "as"})
    if (unit == u) return true;
  return false;
}

Status ParseDescr(const std::string& descr, NpyHeader& header) {
  std::string_view rest = descr;
  char order = '=';
  if (!rest.empty() && std::string_view("<>|=").find(rest[0]) != std::string_view::npos) {
    order = rest[0];
    rest.remove_prefix(1);
  }
  if (!rest.empty() && rest[0] == 'O') {
    return InvalidArgumentError(
        "object arrays (dtype '" + Shown(descr) +
        "') hold pickled Python objects, which are not read here; save a numeric or boolean array");
  }
  struct Known {
    std::string_view code;
    NpyElement element;
    int size;
  };
  static constexpr Known kKnown[] = {
      {"b1", NpyElement::kBool, 1},    {"i1", NpyElement::kInt8, 1},
      {"i2", NpyElement::kInt16, 2},   {"i4", NpyElement::kInt32, 4},
      {"i8", NpyElement::kInt64, 8},   {"u1", NpyElement::kUInt8, 1},
      {"u2", NpyElement::kUInt16, 2},  {"u4", NpyElement::kUInt32, 4},
      {"u8", NpyElement::kUInt64, 8},  {"f4", NpyElement::kFloat32, 4},
      {"f8", NpyElement::kFloat64, 8},
  };
  const bool little = std::endian::native == std::endian::little;
  for (const Known& k : kKnown) {
    if (rest != k.code) continue;
    header.element = k.element;
    header.item_size = k.size;
    header.swap = k.size > 1 && ((order == '<' && !little) || (order == '>' && little));
    return Status::Ok();
  }
  // Datetimes and durations are int64 counts of their unit (their mocks draw int64 values).
  if (IsDatetimeCode(rest)) {
    header.element = NpyElement::kInt64;
    header.item_size = 8;
    header.swap = (order == '<' && !little) || (order == '>' && little);
    return Status::Ok();
  }
  header.element = NpyElement::kOpaque;
  header.swap = false;
  if (rest == "f2" || rest == "c8" || rest == "c16") {
    header.item_size = rest == "f2" ? 2 : rest == "c8" ? 8 : 16;
    return Status::Ok();
  }
  if (!rest.empty() && (rest[0] == 'U' || rest[0] == 'S' || rest[0] == 'V')) {
    uint64_t n = SizeOf(rest.substr(1));
    if (n > 0) {
      header.item_size = rest[0] == 'U' ? 4 * n : n;
      return Status::Ok();
    }
  }
  return InvalidArgumentError(
      "unsupported dtype '" + Shown(descr) +
      "': use bool, int8 to int64, uint8 to uint64, float16 to float64, complex, datetime64, "
      "timedelta64, fixed-size strings ('U', 'S'), or records of these");
}

// The size of the structured dtype whose field list starts at `lit` ("[('a', '<i4'), ('b',
// '<f8', (2,)), ('c', [...])]"), consumed. Fields are (name, code or list[, shape]); titles,
// offsets and object fields are refused.
Result<uint64_t> StructuredSize(Literal& lit, int depth) {
  constexpr uint64_t kMaxItemBytes = uint64_t{1} << 31;
  if (depth > 8) return HeaderError("the structured dtype is nested more than 8 deep");
  if (!lit.Consume('[')) return HeaderError("a structured dtype is a list of fields");
  uint64_t size = 0;
  for (int fields = 0;; ++fields) {
    if (lit.Consume(']')) break;
    if (fields >= 4096) return HeaderError("a structured dtype has more than 4096 fields");
    if (!lit.Consume('(')) return HeaderError("each field is a tuple ('name', dtype[, shape])");
    lit.SkipSpace();
    if (lit.Peek() == '(') {
      return InvalidArgumentError("structured dtypes with titles are not supported");
    }
    ASSIGN_OR_RETURN(std::string name, lit.String());
    if (!lit.Consume(',')) return HeaderError("expected ',' after the field '" + Shown(name) + "'");
    lit.SkipSpace();
    uint64_t field = 0;
    if (lit.Peek() == '[') {
      ASSIGN_OR_RETURN(field, StructuredSize(lit, depth + 1));
    } else {
      ASSIGN_OR_RETURN(std::string code, lit.String());
      NpyHeader inner;
      RETURN_IF_ERROR(ParseDescr(code, inner));
      field = inner.item_size;
    }
    if (lit.Consume(',')) {
      lit.SkipSpace();
      if (lit.Peek() == '(') {
        ASSIGN_OR_RETURN(std::vector<uint64_t> shape, lit.Shape());
        for (uint64_t d : shape) {
          if (d != 0 && field > kMaxItemBytes / d) return HeaderError("a field is too large");
          field *= d;
        }
        lit.Consume(',');
      }
    }
    if (!lit.Consume(')')) return HeaderError("a field tuple is not closed");
    size += field;
    if (size > kMaxItemBytes) return HeaderError("the structured dtype is too large");
    if (!lit.Consume(',')) {
      if (!lit.Consume(']')) return HeaderError("expected ',' or ']' in the field list");
      break;
    }
  }
  return size;
}

}  // namespace

Result<NpyHeader> ParseNpyHeaderDict(std::string_view text) {
  // Its names (structured fields) reach the schema, which is JSON.
  if (!IsValidUtf8(text)) return HeaderError("it is not valid UTF-8");
  NpyHeader header;
  Literal lit(text);
  bool has_descr = false, has_order = false, has_shape = false;
  if (!lit.Consume('{')) return HeaderError("it must be a Python dict like {'descr': '<f8', ...}");
  for (;;) {
    if (lit.Consume('}')) break;
    ASSIGN_OR_RETURN(std::string key, lit.String());
    if (!lit.Consume(':')) return HeaderError("expected ':' after '" + Shown(key) + "'");
    if (key == "descr" && !has_descr) {
      lit.SkipSpace();
      if (lit.Peek() == '[') {
        const size_t start = lit.pos();
        ASSIGN_OR_RETURN(header.item_size, StructuredSize(lit, 0));
        header.descr = std::string(text.substr(start, lit.pos() - start));
        header.structured = true;
        header.element = NpyElement::kOpaque;
      } else {
        ASSIGN_OR_RETURN(header.descr, lit.String());
        RETURN_IF_ERROR(ParseDescr(header.descr, header));
      }
      if (header.item_size == 0) return HeaderError("the dtype has no bytes");
      has_descr = true;
    } else if (key == "fortran_order" && !has_order) {
      ASSIGN_OR_RETURN(header.fortran_order, lit.Bool());
      has_order = true;
    } else if (key == "shape" && !has_shape) {
      ASSIGN_OR_RETURN(header.shape, lit.Shape());
      has_shape = true;
    } else {
      return HeaderError("unexpected or repeated key '" + Shown(key) + "'");
    }
    if (!lit.Consume(',')) {
      if (!lit.Consume('}')) return HeaderError("expected ',' or '}'");
      break;
    }
  }
  lit.SkipSpace();
  if (!lit.AtEnd()) return HeaderError("unexpected text after the dict");
  if (!has_descr || !has_order || !has_shape) {
    return HeaderError("it must have the keys 'descr', 'fortran_order' and 'shape'");
  }
  header.count = 1;
  for (uint64_t d : header.shape) {
    if (d != 0 && header.count > std::numeric_limits<uint64_t>::max() / d) {
      return HeaderError("the shape has too many elements");
    }
    header.count *= d;
  }
  if (header.count > std::numeric_limits<uint64_t>::max() / header.item_size) {
    return HeaderError("the shape has too many elements");
  }
  header.data_bytes = header.count * header.item_size;
  return header;
}

Result<NpyHeader> ReadNpyHeader(InputFile& file, std::string& preamble) {
  char fixed[12];
  if (!file.ReadExactly(fixed, 8) || std::string_view(fixed, 6) != kMagic) {
    RETURN_IF_ERROR(file.status());
    return InvalidArgumentError("not a .npy file: bad magic (it must start with \\x93NUMPY)");
  }
  int major = static_cast<unsigned char>(fixed[6]);
  int minor = static_cast<unsigned char>(fixed[7]);
  if (major < 1 || major > 3 || minor != 0) {
    return InvalidArgumentError("unsupported .npy format version " + std::to_string(major) + "." +
                                std::to_string(minor) + " (1.0, 2.0 and 3.0 are supported)");
  }
  size_t length_bytes = major == 1 ? 2 : 4;
  if (!file.ReadExactly(fixed + 8, length_bytes)) {
    RETURN_IF_ERROR(file.status());
    return InvalidArgumentError("not a valid .npy file: it ends inside its header");
  }
  uint32_t header_len = 0;
  for (size_t i = 0; i < length_bytes; ++i) {
    header_len |= static_cast<uint32_t>(static_cast<unsigned char>(fixed[8 + i])) << (8 * i);
  }
  if (header_len > kMaxNpyHeaderBytes) return HeaderError("it is longer than 1 MiB");
  preamble.assign(fixed, 8 + length_bytes);
  std::string text(header_len, '\0');
  if (!file.ReadExactly(text.data(), header_len)) {
    RETURN_IF_ERROR(file.status());
    return InvalidArgumentError("not a valid .npy file: it ends inside its header");
  }
  preamble += text;
  ASSIGN_OR_RETURN(NpyHeader header, ParseNpyHeaderDict(text));
  uint64_t have = file.size() - std::min<uint64_t>(file.size(), preamble.size());
  if (have < header.data_bytes) {
    return InvalidArgumentError("the .npy file is truncated: its header promises " +
                                std::to_string(header.data_bytes) + " bytes of data, it holds " +
                                std::to_string(have));
  }
  if (have > header.data_bytes) {
    return InvalidArgumentError("the .npy file has " + std::to_string(have - header.data_bytes) +
                                " bytes after the data its header describes");
  }
  return header;
}

Result<nlohmann::json> NpySchema(const std::string& path) {
  ASSIGN_OR_RETURN(InputFile file, InputFile::Open(path));
  std::string preamble;
  ASSIGN_OR_RETURN(NpyHeader header, ReadNpyHeader(file, preamble));
  return nlohmann::json{{"kind", "array"}, {"dtype", header.descr}, {"shape", header.shape}};
}

// ---- Mock ----

namespace {

struct BoolTag {};
struct OpaqueTag {};  // elements written as zero bytes

// Calls fn(T{}) with the C++ type of the element (BoolTag for bool, OpaqueTag for kOpaque).
template <typename Fn>
void WithElementType(NpyElement element, Fn&& fn) {
  switch (element) {
    case NpyElement::kBool:
      return fn(BoolTag{});
    case NpyElement::kInt8:
      return fn(int8_t{});
    case NpyElement::kInt16:
      return fn(int16_t{});
    case NpyElement::kInt32:
      return fn(int32_t{});
    case NpyElement::kInt64:
      return fn(int64_t{});
    case NpyElement::kUInt8:
      return fn(uint8_t{});
    case NpyElement::kUInt16:
      return fn(uint16_t{});
    case NpyElement::kUInt32:
      return fn(uint32_t{});
    case NpyElement::kUInt64:
      return fn(uint64_t{});
    case NpyElement::kFloat32:
      return fn(float{});
    case NpyElement::kFloat64:
      return fn(double{});
    case NpyElement::kOpaque:
      return fn(OpaqueTag{});
  }
}

template <typename T>
T Load(const char* p, bool swap) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, p, sizeof(T));
  if (swap) std::reverse(bytes, bytes + sizeof(T));
  T v;
  std::memcpy(&v, bytes, sizeof(T));
  return v;
}

template <typename T>
void Store(char* p, T v, bool swap) {
  std::memcpy(p, &v, sizeof(T));
  if (swap) std::reverse(p, p + sizeof(T));
}

// The preamble of a .npy file (version 1.0, or 2.0 when the header is longer than 64 KiB) for an
// array of `descr` in `fortran_order` of `shape`, its header padded to a multiple of 64 bytes.
std::string NpyPreamble(const NpyHeader& header, const std::vector<uint64_t>& shape) {
  std::string descr = header.structured ? header.descr : "'" + header.descr + "'";
  std::string dict = "{'descr': " + descr +
                     ", 'fortran_order': " + (header.fortran_order ? "True" : "False") +
                     ", 'shape': (";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) dict += ", ";
    dict += std::to_string(shape[i]);
  }
  dict += shape.size() == 1 ? ",), }" : "), }";
  size_t fixed = 10;
  if (dict.size() + 1 + fixed > 0xffff) fixed = 12;
  size_t total = (fixed + dict.size() + 1 + 63) / 64 * 64;
  dict.append(total - fixed - dict.size() - 1, ' ');
  dict += '\n';
  std::string preamble(kMagic);
  preamble += static_cast<char>(fixed == 10 ? 1 : 2);
  preamble += '\0';
  for (size_t i = 0; i < fixed - 8; ++i) {
    preamble += static_cast<char>((dict.size() >> (8 * i)) & 0xff);
  }
  return preamble + dict;
}

// Checks the owner's parameters of the values fit the element type T (BoolTag for bool).
template <typename T>
Status CheckValueParams(const MockValueParams& p, const std::string& descr) {
  if constexpr (std::is_same_v<T, OpaqueTag>) {
    return InvalidArgumentError("values: the mock of an array of dtype " + descr.substr(0, 40) +
                                " is zero-filled; it takes no value parameters");
  } else if constexpr (std::is_same_v<T, BoolTag>) {
    if (p.bounds) return InvalidArgumentError("values.min: a boolean array has no bounds");
  } else if constexpr (std::is_floating_point_v<T>) {
    if (p.bounds && (std::fabs(p.bounds->min) > std::numeric_limits<T>::max() ||
                     std::fabs(p.bounds->max) > std::numeric_limits<T>::max())) {
      return InvalidArgumentError("values.min: the bounds do not fit dtype " + descr);
    }
  } else if (p.bounds) {
    if (!p.bounds->integers) {
      return InvalidArgumentError("values.min: dtype " + descr +
                                  " holds integers; give whole-number bounds");
    }
    if (Int128{p.bounds->imin} < Int128{std::numeric_limits<T>::min()} ||
        Int128{p.bounds->imax} > Int128{std::numeric_limits<T>::max()}) {
      return InvalidArgumentError("values.min: the bounds do not fit dtype " + descr);
    }
  }
  if constexpr (!std::is_floating_point_v<T> && !std::is_same_v<T, OpaqueTag>) {
    if (p.null_fraction > 0) {
      return InvalidArgumentError("values.null_fraction: dtype " + descr +
                                  " has no NaN; only float arrays may have nulls");
    }
  }
  return Status::Ok();
}

template <typename T>
void Fill(char* p, size_t n, bool swap, const MockValueParams* params, Rng& rng) {
  for (size_t i = 0; i < n; ++i) {
    T v;
    if constexpr (std::is_floating_point_v<T>) {
      if (params != nullptr && DrawChance(rng, params->null_fraction)) {
        v = std::numeric_limits<T>::quiet_NaN();
      } else {
        v = static_cast<T>(DrawReal(rng, params));
      }
    } else {
      v = static_cast<T>(DrawInt(rng, params));
    }
    Store<T>(p + i * sizeof(T), v, swap);
  }
}

}  // namespace

Result<nlohmann::json> WriteNpyMock(const std::string& in_path, const MockParams& params,
                                    uint64_t seed, OutputFile& out) {
  // Of the private file only the header is read (and the file's size checked against it).
  ASSIGN_OR_RETURN(InputFile file, InputFile::Open(in_path));
  std::string private_preamble;
  ASSIGN_OR_RETURN(NpyHeader header, ReadNpyHeader(file, private_preamble));
  std::vector<uint64_t> shape = header.shape;
  if (shape.empty() && params.rows) {
    return InvalidArgumentError("rows: the array has no dimensions (it is a single value)");
  }
  if (!shape.empty()) shape[0] = params.rows.value_or(kDefaultMockRows);
  uint64_t row_bytes = header.item_size;
  for (size_t i = 1; i < shape.size(); ++i) {
    if (shape[i] != 0 && row_bytes > kMaxMockBytes / shape[i]) {
      return InvalidArgumentError("the mock would be larger than " +
                                  std::to_string(kMaxMockBytes >> 20) +
                                  " MiB even with one row; upload a mock");
    }
    row_bytes *= shape[i];
  }
  const uint64_t rows = shape.empty() ? 1 : shape[0];
  if (row_bytes > 0 && rows > kMaxMockBytes / row_bytes) {
    return InvalidArgumentError("rows: the mock would be larger than " +
                                std::to_string(kMaxMockBytes >> 20) + " MiB; ask for at most " +
                                std::to_string(kMaxMockBytes / row_bytes) + " rows");
  }
  const MockValueParams* values = params.values ? &*params.values : nullptr;
  if (values != nullptr) {
    Status fits;
    WithElementType(header.element, [&](auto zero) {
      fits = CheckValueParams<decltype(zero)>(*values, header.descr);
    });
    RETURN_IF_ERROR(fits);
  }

  Rng rng(seed);
  MockValueParams bool_range;  // Booleans are integers in [0, 1].
  bool_range.bounds = MockBounds{true, 0, 1, 0, 1};
  out.Write(NpyPreamble(header, shape));
  auto chunk = std::make_unique<char[]>(kChunkBytes);
  for (uint64_t left = rows * row_bytes; left > 0;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(left, kChunkBytes));
    WithElementType(header.element, [&](auto zero) {
      using T = decltype(zero);
      if constexpr (std::is_same_v<T, BoolTag>) {
        Fill<uint8_t>(chunk.get(), n, false, &bool_range, rng);
      } else if constexpr (std::is_same_v<T, OpaqueTag>) {
        std::memset(chunk.get(), 0, n);
      } else {
        Fill<T>(chunk.get(), n / sizeof(T), header.swap, values, rng);
      }
    });
    out.Write(std::string_view(chunk.get(), n));
    RETURN_IF_ERROR(out.status());
    left -= n;
  }
  RETURN_IF_ERROR(out.status());
  return nlohmann::json{{"kind", "array"}, {"dtype", header.descr}, {"shape", shape}};
}

}  // namespace datasite::data::internal
