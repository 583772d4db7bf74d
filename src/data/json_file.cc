#include "data/json_file.h"

#include <algorithm>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "data/mock_values.h"
#include "data/sampling.h"

namespace datasite::data::internal {
namespace {

using Json = nlohmann::json;

constexpr size_t kMaxMessage = 300;

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

Status DepthError() {
  return InvalidArgumentError("the JSON nests arrays and objects deeper than " +
                              std::to_string(kMaxJsonDepth) + " levels");
}

// The schema: the top-level type and length.
class SchemaSax {
 public:
  bool null() { return Value("null"); }
  bool boolean(bool) { return Value("boolean"); }
  bool number_integer(Json::number_integer_t) { return Value("number"); }
  bool number_unsigned(Json::number_unsigned_t) { return Value("number"); }
  bool number_float(Json::number_float_t, const Json::string_t&) { return Value("number"); }
  bool string(Json::string_t&) { return Value("string"); }
  bool binary(Json::binary_t&) {  // Not produced by the text parser.
    error_ = InternalError("unexpected binary value in JSON");
    return false;
  }
  bool start_object(std::size_t) { return Open("object", false); }
  bool key(Json::string_t&) {
    if (open_.size() == 1) ++length_;
    return true;
  }
  bool end_object() {
    open_.pop_back();
    return true;
  }
  bool start_array(std::size_t) { return Open("array", true); }
  bool end_array() {
    open_.pop_back();
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const Json::exception& e) {
    error_ = ParseError(e.what());
    return false;
  }

  const Status& error() const { return error_; }
  Json Schema() const { return {{"kind", "json"}, {"type", type_}, {"length", length_}}; }

 private:
  // Counts a value of the top-level array, and names the document's type.
  bool Value(const char* type) {
    if (open_.empty()) type_ = type;
    if (open_.size() == 1 && open_.back()) ++length_;
    return true;
  }
  bool Open(const char* type, bool is_array) {
    if (open_.size() >= kMaxJsonDepth) {
      error_ = DepthError();
      return false;
    }
    Value(type);
    open_.push_back(is_array);
    return true;
  }

  std::vector<bool> open_;  // Whether each open container is an array.
  std::string type_ = "null";
  uint64_t length_ = 0;
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
  return InternalError("the JSON parse stopped early");
}

// ---- Mock ----

enum TypeBit : uint8_t {
  kNullBit = 1,
  kBoolBit = 2,
  kIntBit = 4,
  kFloatBit = 8,
  kStringBit = 16,
  kObjectBit = 32,
  kArrayBit = 64,
};

// One path of the document's shape: the types seen there, merged over every value at the path.
struct ShapeNode {
  std::string path;   // A JSON Pointer, "*" for array elements and non-public keys.
  std::string label;  // The name of its synthetic strings: its public key, else "value".
  uint8_t types = 0;
  bool public_keys = false;
  int elements = -1;  // Node of the elements, when some array here had one.
  int values = -1;    // Node of the values of objects with synthetic keys, when one had a key.
  std::vector<std::pair<std::string, int>> keys;  // Public keys, in the order first seen.
};

std::string EscapeSegment(std::string_view key) {
  std::string out;
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

// Reads the shape of types of a document: no key (unless its object's keys are declared
// public), no length, no value, no count. Memory: the nodes, at most kMaxMockNodes.
class ShapeSax {
 public:
  explicit ShapeSax(const std::unordered_set<std::string>& public_keys)
      : public_keys_(public_keys) {
    NewNode("", "value");
  }

  bool null() { return Scalar(kNullBit); }
  bool boolean(bool) { return Scalar(kBoolBit); }
  bool number_integer(Json::number_integer_t) { return Scalar(kIntBit); }
  bool number_unsigned(Json::number_unsigned_t) { return Scalar(kIntBit); }
  bool number_float(Json::number_float_t, const Json::string_t&) { return Scalar(kFloatBit); }
  bool string(Json::string_t&) { return Scalar(kStringBit); }
  bool binary(Json::binary_t&) {
    error_ = InternalError("unexpected binary value in JSON");
    return false;
  }
  bool start_object(std::size_t) { return Open(kObjectBit); }
  bool key(Json::string_t& k) {
    Frame& top = frames_.back();
    ShapeNode& node = nodes_[top.node];
    if (!node.public_keys) {
      if (node.values < 0) {
        int child = NewNode(node.path + "/*", "value");
        if (child < 0) return false;
        nodes_[top.node].values = child;
      }
      top.next = nodes_[top.node].values;
      return true;
    }
    std::string path = node.path + "/" + EscapeSegment(k);
    auto it = by_path_.find(path);
    if (it != by_path_.end()) {
      top.next = it->second;
      return true;
    }
    int child = NewNode(path, k);
    if (child < 0) return false;
    nodes_[top.node].keys.emplace_back(k, child);
    top.next = child;
    return true;
  }
  bool end_object() {
    frames_.pop_back();
    return true;
  }
  bool start_array(std::size_t) { return Open(kArrayBit); }
  bool end_array() {
    frames_.pop_back();
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const Json::exception& e) {
    error_ = ParseError(e.what());
    return false;
  }

  const Status& error() const { return error_; }
  const std::vector<ShapeNode>& nodes() const { return nodes_; }
  const std::unordered_map<std::string, int>& by_path() const { return by_path_; }

 private:
  struct Frame {
    int node;
    bool is_array;
    int next = -1;  // Objects: the node of the value after the last key.
  };

  // The node of the value that comes next, made when new; -1 on error.
  int Next() {
    if (frames_.empty()) return 0;
    Frame& top = frames_.back();
    if (!top.is_array) return top.next;
    ShapeNode& node = nodes_[top.node];
    if (node.elements >= 0) return node.elements;
    int child = NewNode(node.path + "/*", node.label);
    if (child >= 0) nodes_[top.node].elements = child;
    return child;
  }
  bool Scalar(uint8_t bit) {
    int node = Next();
    if (node < 0) return false;
    nodes_[node].types |= bit;
    return true;
  }
  bool Open(uint8_t bit) {
    if (frames_.size() >= kMaxJsonMockDepth) {
      error_ =
          FailedPreconditionError("a mock can be generated only for JSON nested at most " +
                                  std::to_string(kMaxJsonMockDepth) + " levels deep; upload one");
      return false;
    }
    int node = Next();
    if (node < 0) return false;
    nodes_[node].types |= bit;
    frames_.push_back({node, bit == kArrayBit});
    return true;
  }
  // Takes `label` by value: callers pass a node's own label, which emplace_back may move.
  int NewNode(std::string path, std::string label) {
    if (nodes_.size() >= kMaxJsonMockNodes) {
      error_ = InvalidArgumentError(
          "the document has more than " + std::to_string(kMaxJsonMockNodes) +
          " paths with the keys declared public; declare fewer objects' keys public");
      return -1;
    }
    path_bytes_ += path.size() + label.size();
    if (path_bytes_ > kMaxJsonMockPathBytes) {
      error_ = InvalidArgumentError(
          "the paths of the document, with the keys declared public, are too long to make a "
          "mock of; declare fewer objects' keys public");
      return -1;
    }
    ShapeNode& node = nodes_.emplace_back();
    node.path = std::move(path);
    node.label = std::move(label);
    node.public_keys = public_keys_.count(node.path) > 0;
    int id = static_cast<int>(nodes_.size() - 1);
    by_path_.emplace(node.path, id);
    return id;
  }

  const std::unordered_set<std::string>& public_keys_;
  std::vector<ShapeNode> nodes_;
  std::unordered_map<std::string, int> by_path_;
  std::vector<Frame> frames_;
  uint64_t path_bytes_ = 0;
  Status error_;
};

void WriteString(OutputFile& out, std::string_view s) {
  out.Put('"');
  size_t plain = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.Write(s.substr(plain, i - plain));
    plain = i + 1;
    switch (c) {
      case '"':
        out.Write("\\\"");
        break;
      case '\\':
        out.Write("\\\\");
        break;
      case '\n':
        out.Write("\\n");
        break;
      case '\r':
        out.Write("\\r");
        break;
      case '\t':
        out.Write("\\t");
        break;
      default: {
        static constexpr char kHex[] = "0123456789abcdef";
        char escaped[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
        out.Write(std::string_view(escaped, sizeof(escaped)));
      }
    }
  }
  out.Write(s.substr(plain));
  out.Put('"');
}

// Writes a mock document from the shape and the owner's parameters alone.
class ShapeMock {
 public:
  ShapeMock(const std::vector<ShapeNode>& nodes, std::vector<const MockValueParams*> params,
            uint64_t rows, uint64_t seed, OutputFile& out)
      : nodes_(nodes), params_(std::move(params)), rows_(rows), rng_(seed), out_(out) {}

  Status Write() {
    // Refused before writing when even the smallest mock of this shape would be too large.
    budget_.Add(static_cast<uint64_t>(std::min(MinBytes(0), 1e18)));
    RETURN_IF_ERROR(budget_.Check());
    budget_ = MockBudget(budget_advice_);
    RETURN_IF_ERROR(Value(0));
    Emit("\n");
    RETURN_IF_ERROR(budget_.Check());
    return out_.status();
  }

  // The schema of the mock written: JsonSchema's answer for it.
  nlohmann::json Schema() const {
    return {{"kind", "json"}, {"type", root_type_}, {"length", root_length_}};
  }

 private:
  Status Value(int id) {
    const ShapeNode& node = nodes_[id];
    const MockValueParams* p = params_[id];
    if (p != nullptr && DrawChance(rng_, p->null_fraction)) {
      Emit("null");
      return Status::Ok();
    }
    if (p != nullptr && p->categories) {
      const Json& c = (*p->categories)[UniformIndex(rng_, p->categories->size())];
      if (id == 0) root_type_ = c.is_string() ? "string" : c.is_boolean() ? "boolean" : "number";
      Emit(c.dump());
      return Status::Ok();
    }
    // One of the types seen here, each as likely; null only where nothing else was seen.
    uint8_t choices[7];
    size_t n = 0;
    for (uint8_t bit = kBoolBit; bit <= kArrayBit; bit = static_cast<uint8_t>(bit << 1)) {
      if (node.types & bit) choices[n++] = bit;
    }
    if (n == 0) {
      Emit("null");
      return Status::Ok();
    }
    uint8_t chosen = choices[UniformIndex(rng_, n)];
    if (id == 0) {
      root_type_ = chosen == kBoolBit     ? "boolean"
                   : chosen == kStringBit ? "string"
                   : chosen == kObjectBit ? "object"
                   : chosen == kArrayBit  ? "array"
                                          : "number";
    }
    switch (chosen) {
      case kBoolBit:
        Emit(UniformIndex(rng_, 2) ? "true" : "false");
        break;
      case kIntBit:
        Emit(std::to_string(DrawInt(rng_, p)));
        break;
      case kFloatBit:
        Emit(FormatReal(DrawReal(rng_, p)));
        break;
      case kStringBit: {
        std::string label = DrawLabel(rng_, node.label);
        budget_.Add(label.size() + 2);
        WriteString(out_, label);
        break;
      }
      case kArrayBit:
        return Array(id);
      case kObjectBit:
        return Object(id);
    }
    return Status::Ok();
  }

  // The fewest bytes the mock of node `id` can take (not counting nulls drawn).
  double MinBytes(int id) const {
    const ShapeNode& node = nodes_[id];
    const MockValueParams* p = params_[id];
    if (p != nullptr && p->null_fraction > 0) return 4;
    if (p != nullptr && p->categories) return 1;
    double fewest = node.types == 0 || node.types == kNullBit ? 4 : 1e300;
    if (node.types & (kBoolBit | kIntBit | kFloatBit | kStringBit)) fewest = 1;
    if (node.types & kArrayBit) {
      uint64_t length = id == 0 ? rows_ : kDefaultMockLength;
      if (p != nullptr && p->length) length = *p->length;
      if (node.elements < 0) length = 0;
      double each = length > 0 ? MinBytes(node.elements) + 1 : 0;
      fewest = std::min(fewest, 2 + static_cast<double>(length) * each);
    }
    if (node.types & kObjectBit) {
      double bytes = 2;
      if (node.public_keys) {
        for (const auto& [key, child] : node.keys)
          bytes += static_cast<double>(key.size()) + 4 + MinBytes(child);
      } else if (node.values >= 0) {
        uint64_t count = p != nullptr && p->length ? *p->length : kDefaultMockLength;
        bytes += static_cast<double>(count) * (9 + MinBytes(node.values));
      }
      fewest = std::min(fewest, bytes);
    }
    return fewest;
  }

  Status Array(int id) {
    const ShapeNode& node = nodes_[id];
    const MockValueParams* p = params_[id];
    uint64_t length = id == 0 ? rows_ : kDefaultMockLength;
    if (p != nullptr && p->length) length = *p->length;
    if (node.elements < 0) length = 0;  // No array here had an element: no type to make one of.
    if (id == 0) root_length_ = length;
    Emit("[");
    for (uint64_t i = 0; i < length; ++i) {
      if (i > 0) Emit(",");
      RETURN_IF_ERROR(Value(node.elements));
      RETURN_IF_ERROR(Progress());
    }
    Emit("]");
    return Status::Ok();
  }

  Status Object(int id) {
    const ShapeNode& node = nodes_[id];
    Emit("{");
    if (node.public_keys) {
      if (id == 0) root_length_ = node.keys.size();
      for (size_t i = 0; i < node.keys.size(); ++i) {
        if (i > 0) Emit(",");
        budget_.Add(node.keys[i].first.size() + 3);
        WriteString(out_, node.keys[i].first);
        Emit(":");
        RETURN_IF_ERROR(Value(node.keys[i].second));
        RETURN_IF_ERROR(Progress());
      }
    } else if (node.values >= 0) {
      const MockValueParams* p = params_[id];
      uint64_t count = p != nullptr && p->length ? *p->length : kDefaultMockLength;
      if (id == 0) root_length_ = count;
      for (uint64_t k = 1; k <= count; ++k) {
        if (k > 1) Emit(",");
        Emit("\"key_" + std::to_string(k) + "\":");
        RETURN_IF_ERROR(Value(node.values));
        RETURN_IF_ERROR(Progress());
      }
    }
    Emit("}");
    return Status::Ok();
  }

  void Emit(std::string_view text) {
    budget_.Add(text.size());
    out_.Write(text);
  }
  Status Progress() {
    RETURN_IF_ERROR(budget_.Check());
    return out_.status();
  }

  const std::vector<ShapeNode>& nodes_;
  const std::vector<const MockValueParams*> params_;  // By node; null when none declared.
  const uint64_t rows_;
  Rng rng_;
  OutputFile& out_;
  const std::string budget_advice_ =
      "ask for fewer rows or shorter arrays (\"length\" in \"paths\")";
  MockBudget budget_{budget_advice_};
  std::string root_type_ = "null";
  uint64_t root_length_ = 0;
};

// What the paths named in `paths` hold, for a message.
std::string Holds(const ShapeNode& node) {
  static constexpr std::pair<uint8_t, const char*> kNames[] = {
      {kNullBit, "null"},    {kBoolBit, "booleans"},  {kIntBit, "integers"},
      {kFloatBit, "floats"}, {kStringBit, "strings"}, {kObjectBit, "objects"},
      {kArrayBit, "arrays"}};
  std::string out;
  for (const auto& [bit, name] : kNames) {
    if (!(node.types & bit)) continue;
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

// Checks each declared path names a value of the shape, and its parameters fit what it holds.
Status CheckPaths(const ShapeSax& shape, const MockParams& params,
                  std::vector<const MockValueParams*>& by_node) {
  const auto& nodes = shape.nodes();
  auto missing = [](const std::string& field, const std::string& path) {
    return InvalidArgumentError(
        field + ": the document has no value at '" + path.substr(0, 200) +
        "'; paths use \"*\" for the elements of arrays and for the values of objects whose keys "
        "are not public");
  };
  if (params.public_keys) {
    for (size_t i = 0; i < params.public_keys->size(); ++i) {
      const std::string& path = (*params.public_keys)[i];
      const std::string field = "public_keys[" + std::to_string(i) + "]";
      auto it = shape.by_path().find(path);
      if (it == shape.by_path().end()) return missing(field, path);
      if (!(nodes[it->second].types & kObjectBit)) {
        return InvalidArgumentError(field + ": '" + path.substr(0, 200) + "' holds " +
                                    Holds(nodes[it->second]) + ", not objects");
      }
    }
  }
  by_node.assign(nodes.size(), nullptr);
  if (!params.paths) return Status::Ok();
  for (const auto& [path, spec] : *params.paths) {
    const std::string field = "paths." + path;
    auto it = shape.by_path().find(path);
    if (it == shape.by_path().end()) return missing(field, path);
    const ShapeNode& node = nodes[it->second];
    if (spec.bounds && !(node.types & (kIntBit | kFloatBit))) {
      return InvalidArgumentError(field + ".min: '" + path + "' holds " + Holds(node) +
                                  "; min and max apply to numbers only");
    }
    if (spec.bounds && (node.types & kIntBit) && !spec.bounds->integers) {
      return InvalidArgumentError(field + ".min: '" + path +
                                  "' holds integers; give whole-number "
                                  "bounds");
    }
    bool synthetic_keys = (node.types & kObjectBit) && !node.public_keys;
    if (spec.length && !(node.types & kArrayBit) && !synthetic_keys) {
      return InvalidArgumentError(field + ".length: '" + path + "' holds " + Holds(node) +
                                  "; length applies to arrays and to objects whose keys are not "
                                  "public");
    }
    by_node[it->second] = &spec;
  }
  return Status::Ok();
}

}  // namespace

Result<nlohmann::json> JsonSchema(const std::string& path) {
  SchemaSax scan;
  RETURN_IF_ERROR(Parse(path, scan));
  return scan.Schema();
}

Result<nlohmann::json> WriteJsonMock(const std::string& in_path, const MockParams& params,
                                     uint64_t seed, OutputFile& out) {
  std::unordered_set<std::string> public_keys;
  if (params.public_keys)
    public_keys.insert(params.public_keys->begin(), params.public_keys->end());
  auto shape = std::make_unique<ShapeSax>(public_keys);
  RETURN_IF_ERROR(Parse(in_path, *shape));
  std::vector<const MockValueParams*> by_node;
  RETURN_IF_ERROR(CheckPaths(*shape, params, by_node));
  const ShapeNode& root = shape->nodes()[0];
  if (params.rows && !(root.types & kArrayBit)) {
    return InvalidArgumentError(
        "rows: the document is not an array; set the length of an inner array with "
        "paths.<path>.length");
  }
  ShapeMock mock(shape->nodes(), std::move(by_node), params.rows.value_or(kDefaultMockRows), seed,
                 out);
  RETURN_IF_ERROR(mock.Write());
  return mock.Schema();
}

}  // namespace datasite::data::internal
