#include "data/json_file.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "data/bounded_hash_set.h"
#include "data/sampling.h"

namespace datasite::data::internal {
namespace {

using Json = nlohmann::json;

constexpr uint64_t kRootPath = 0x9e3779b97f4a7c15ULL;
constexpr uint64_t kAnyIndex = 0x2545f4914f6cdd1dULL;
constexpr size_t kMaxMessage = 300;

uint64_t HashOf(std::string_view s) { return std::hash<std::string_view>{}(s); }

uint64_t Mix(uint64_t parent, uint64_t child) {
  uint64_t h = parent ^ (child + 0x9e3779b97f4a7c15ULL + (parent << 6) + (parent >> 2));
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h;
}

bool IsAsciiLetters(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); });
}

size_t CodePoints(std::string_view s) {
  return static_cast<size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

// Where the parser is in the document: the open containers and the path of the next value.
class PathTracker {
 public:
  struct Frame {
    bool is_array;
    bool empty = true;      // No element or key yet.
    uint64_t path;          // Of the container itself.
    uint64_t key_path = 0;  // Of the value after the last key (objects).
  };

  // The path of the value that comes next.
  uint64_t ValuePath() const {
    if (frames_.empty()) return kRootPath;
    const Frame& top = frames_.back();
    return top.is_array ? Mix(top.path, kAnyIndex) : top.key_path;
  }
  void Enter(bool is_array) { frames_.push_back({is_array, true, ValuePath()}); }
  void Key(std::string_view key) {
    Frame& top = frames_.back();
    top.key_path = Mix(top.path, HashOf(key));
  }
  void Leave() { frames_.pop_back(); }
  size_t depth() const { return frames_.size(); }
  Frame* top() { return frames_.empty() ? nullptr : &frames_.back(); }

 private:
  std::vector<Frame> frames_;
};

// A parse error as a person can act on it: "not valid JSON: parse error at line 3, column 7: ...".
Status ParseError(const char* what) {
  std::string message(what);
  size_t bracket = message.find("] ");
  if (message.rfind("[json.exception", 0) == 0 && bracket != std::string::npos) {
    message.erase(0, bracket + 2);
  }
  if (message.size() > kMaxMessage) message = message.substr(0, kMaxMessage) + "...";
  return InvalidArgumentError("not valid JSON: " + message);
}

// Number ranges seen at one path, and the jittered ranges drawn from them once they are needed.
struct NumberStats {
  bool has_int = false;
  Int128 int_min = 0;
  Int128 int_max = 0;
  bool has_real = false;
  double real_min = 0;
  double real_max = 0;
  bool drawn_int = false;
  IntRange ints;
  bool drawn_real = false;
  RealRange reals;

  void AddInt(Int128 v) {
    int_min = has_int ? std::min(int_min, v) : v;
    int_max = has_int ? std::max(int_max, v) : v;
    has_int = true;
  }
  void AddReal(double v) {
    real_min = has_real ? std::min(real_min, v) : v;
    real_max = has_real ? std::max(real_max, v) : v;
    has_real = true;
  }
};

// The first pass: the schema, number ranges per path, and the short private strings.
class ScanSax {
 public:
  bool null() { return Scalar("null"); }
  bool boolean(bool) { return Scalar("boolean"); }
  bool number_integer(Json::number_integer_t v) { return Integer(v); }
  bool number_unsigned(Json::number_unsigned_t v) { return Integer(v); }
  bool number_float(Json::number_float_t v, const Json::string_t&) {
    if (std::isfinite(v)) {  // The parser refuses overflows; this keeps ranges finite regardless.
      Stats().AddReal(v);
      global_.AddReal(v);
    }
    return Scalar("number");
  }
  bool string(Json::string_t& s) {
    if (s.size() <= kMaxRememberedStringLength && IsAsciiLetters(s)) strings_.Insert(HashOf(s));
    return Scalar("string");
  }
  bool binary(Json::binary_t&) {  // Not produced by the text parser.
    error_ = InternalError("unexpected binary value in JSON");
    return false;
  }
  bool start_object(std::size_t) { return Open("object", false); }
  bool key(Json::string_t& k) {
    if (tracker_.depth() == 1) ++length_;
    tracker_.Key(k);
    return true;
  }
  bool end_object() {
    tracker_.Leave();
    return true;
  }
  bool start_array(std::size_t) { return Open("array", true); }
  bool end_array() {
    tracker_.Leave();
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const Json::exception& e) {
    error_ = ParseError(e.what());
    return false;
  }

  const Status& error() const { return error_; }
  Json Schema() const { return {{"kind", "json"}, {"type", type_}, {"length", length_}}; }
  std::unordered_map<uint64_t, NumberStats>& stats() { return stats_; }
  NumberStats& global() { return global_; }
  const BoundedHashSet& strings() const { return strings_; }

 private:
  // Counts a value of the top-level array, and names the document's type.
  void Value(const char* type) {
    if (tracker_.depth() == 0) type_ = type;
    if (tracker_.depth() == 1 && tracker_.top()->is_array) ++length_;
  }
  bool Scalar(const char* type) {
    Value(type);
    return true;
  }
  bool Open(const char* type, bool is_array) {
    if (tracker_.depth() >= kMaxJsonDepth) {
      error_ = InvalidArgumentError("the JSON nests arrays and objects deeper than " +
                                    std::to_string(kMaxJsonDepth) + " levels");
      return false;
    }
    Value(type);
    tracker_.Enter(is_array);
    return true;
  }
  template <typename T>
  bool Integer(T v) {
    Stats().AddInt(v);
    global_.AddInt(v);
    return Scalar("number");
  }
  NumberStats& Stats() {
    uint64_t path = tracker_.ValuePath();
    auto it = stats_.find(path);
    if (it != stats_.end()) return it->second;
    if (stats_.size() >= kMaxJsonPaths) return overflow_;
    return stats_[path];
  }

  PathTracker tracker_;
  std::string type_ = "null";
  uint64_t length_ = 0;
  std::unordered_map<uint64_t, NumberStats> stats_;
  NumberStats global_;
  NumberStats overflow_;  // Written to and never read: paths past the cap use global_.
  BoundedHashSet strings_{kMaxRememberedStrings};
  Status error_;
};

// The second pass: writes the mock, compact, as the parser walks the private document.
class MockSax {
 public:
  MockSax(ScanSax& scan, uint64_t seed, OutputFile& out) : scan_(scan), rng_(seed), out_(out) {}

  bool null() {
    Separate();
    out_.Write("null");
    return out_.status().ok();
  }
  bool boolean(bool) {
    Separate();
    out_.Write(UniformIndex(rng_, 2) ? "true" : "false");
    return out_.status().ok();
  }
  bool number_integer(Json::number_integer_t) { return Integer(); }
  bool number_unsigned(Json::number_unsigned_t) { return Integer(); }
  bool number_float(Json::number_float_t, const Json::string_t&) {
    NumberStats& stats = Stats();
    if (!stats.drawn_real) {
      stats.reals = JitteredRealRange(rng_, stats.real_min, stats.real_max,
                                      std::numeric_limits<double>::max());
      stats.drawn_real = true;
    }
    Separate();
    double v = UniformReal(rng_, stats.reals.lo, stats.reals.hi);
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
    std::string_view text(buf, static_cast<size_t>(end - buf));
    out_.Write(text);
    // Keeps it a float for whoever reads it back: 3.0, not 3.
    if (text.find_first_of(".eE") == std::string_view::npos) out_.Write(".0");
    return out_.status().ok();
  }
  bool string(Json::string_t& s) {
    Separate();
    RandomLetters(CodePoints(s));
    WriteString(scratch_);
    return out_.status().ok();
  }
  bool binary(Json::binary_t&) {  // Not produced by the text parser.
    error_ = InternalError("unexpected binary value in JSON");
    return false;
  }
  bool start_object(std::size_t) { return Open('{', false); }
  bool key(Json::string_t& k) {
    PathTracker::Frame* top = tracker_.top();
    if (!top->empty) out_.Put(',');
    top->empty = false;
    WriteString(k);
    out_.Put(':');
    tracker_.Key(k);
    return out_.status().ok();
  }
  bool end_object() { return Close('}'); }
  bool start_array(std::size_t) { return Open('[', true); }
  bool end_array() { return Close(']'); }
  bool parse_error(std::size_t, const std::string&, const Json::exception& e) {
    error_ = ParseError(e.what());
    return false;
  }

  const Status& error() const { return error_; }

 private:
  // Writes the comma before an array element.
  void Separate() {
    PathTracker::Frame* top = tracker_.top();
    if (top == nullptr || !top->is_array) return;
    if (!top->empty) out_.Put(',');
    top->empty = false;
  }
  bool Open(char bracket, bool is_array) {
    Separate();
    out_.Put(bracket);
    tracker_.Enter(is_array);
    return out_.status().ok();
  }
  bool Close(char bracket) {
    out_.Put(bracket);
    tracker_.Leave();
    return out_.status().ok();
  }
  bool Integer() {
    NumberStats& stats = Stats();
    if (!stats.drawn_int) {
      // Signed 64-bit bounds, or unsigned ones when every private value is >= 0.
      Int128 type_min = std::numeric_limits<int64_t>::min();
      Int128 type_max = std::numeric_limits<int64_t>::max();
      if (stats.int_min >= 0) {
        type_min = 0;
        type_max = std::numeric_limits<uint64_t>::max();
      }
      stats.ints = JitteredIntRange(rng_, stats.int_min, std::min(stats.int_max, type_max),
                                    type_min, type_max);
      stats.drawn_int = true;
    }
    Separate();
    Int128 v = UniformInt(rng_, stats.ints.lo, stats.ints.hi);
    char buf[32];
    auto [end, ec] = v < 0 ? std::to_chars(buf, buf + sizeof(buf), static_cast<int64_t>(v))
                           : std::to_chars(buf, buf + sizeof(buf), static_cast<uint64_t>(v));
    out_.Write(std::string_view(buf, static_cast<size_t>(end - buf)));
    return out_.status().ok();
  }
  // Random letters into scratch_, not one of the private strings remembered: a few random tries,
  // then the next free strings in alphabetical order (enough steps to pass every remembered one).
  void RandomLetters(size_t length) {
    static constexpr std::string_view kLetters =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    const BoundedHashSet& taken = scan_.strings();
    scratch_.clear();
    for (size_t i = 0; i < length; ++i) scratch_ += kLetters[UniformIndex(rng_, kLetters.size())];
    if (length == 0 || !taken.Contains(HashOf(scratch_))) return;
    for (int attempt = 0; attempt < 8; ++attempt) {
      for (char& c : scratch_) c = kLetters[UniformIndex(rng_, kLetters.size())];
      if (!taken.Contains(HashOf(scratch_))) return;
    }
    uint64_t space = 1;  // 52^length, saturated.
    for (size_t i = 0; i < length && space <= kMaxRememberedStrings; ++i) space *= kLetters.size();
    uint64_t steps = std::min<uint64_t>({space - 1, taken.size(), scan_budget_});
    scan_budget_ -= steps;
    for (uint64_t step = 0; step < steps; ++step) {
      for (size_t i = length; i-- > 0;) {  // The next string, as an odometer.
        size_t digit = kLetters.find(scratch_[i]) + 1;
        scratch_[i] = kLetters[digit % kLetters.size()];
        if (digit < kLetters.size()) break;
      }
      if (!taken.Contains(HashOf(scratch_))) return;
    }
  }
  NumberStats& Stats() {
    auto it = scan_.stats().find(tracker_.ValuePath());
    return it != scan_.stats().end() ? it->second : scan_.global();
  }
  void WriteString(std::string_view s) {
    out_.Put('"');
    size_t plain = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      unsigned char c = static_cast<unsigned char>(s[i]);
      if (c >= 0x20 && c != '"' && c != '\\') continue;
      out_.Write(s.substr(plain, i - plain));
      plain = i + 1;
      switch (c) {
        case '"':
          out_.Write("\\\"");
          break;
        case '\\':
          out_.Write("\\\\");
          break;
        case '\n':
          out_.Write("\\n");
          break;
        case '\r':
          out_.Write("\\r");
          break;
        case '\t':
          out_.Write("\\t");
          break;
        default: {
          static constexpr char kHex[] = "0123456789abcdef";
          char escaped[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
          out_.Write(std::string_view(escaped, sizeof(escaped)));
        }
      }
    }
    out_.Write(s.substr(plain));
    out_.Put('"');
  }

  ScanSax& scan_;
  Rng rng_;
  OutputFile& out_;
  PathTracker tracker_;
  std::string scratch_;
  uint64_t scan_budget_ = 10'000'000;  // Bounds RandomLetters' work on adversarial documents.
  Status error_;
};

// Runs `sax` over the file at `path`.
template <typename Sax>
Status Parse(const std::string& path, Sax& sax) {
  ASSIGN_OR_RETURN(InputFile file, InputFile::Open(path));
  bool ok = Json::sax_parse(InputFileIterator(file), InputFileIterator(), &sax);
  RETURN_IF_ERROR(file.status());
  if (ok) return Status::Ok();
  if (!sax.error().ok()) return sax.error();
  return InternalError("the JSON parse stopped early");  // Output errors: the caller knows.
}

}  // namespace

Result<nlohmann::json> JsonSchema(const std::string& path) {
  ScanSax scan;
  RETURN_IF_ERROR(Parse(path, scan));
  return scan.Schema();
}

Result<nlohmann::json> WriteJsonMock(const std::string& in_path, uint64_t seed, OutputFile& out) {
  auto scan = std::make_unique<ScanSax>();
  RETURN_IF_ERROR(Parse(in_path, *scan));
  MockSax mock(*scan, seed, out);
  Status parsed = Parse(in_path, mock);
  RETURN_IF_ERROR(out.status());
  if (!parsed.ok()) return InternalError("the JSON file changed while it was read");
  out.Put('\n');
  RETURN_IF_ERROR(out.status());
  return scan->Schema();
}

}  // namespace datasite::data::internal
