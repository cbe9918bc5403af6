#include "common/model_repository.h"

#include <absl/strings/str_cat.h>
#include <absl/strings/str_join.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace splitrans {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

absl::StatusOr<std::vector<int64_t>> ShapeField(const json& j, const char* what) {
  if (!j.is_array() || j.empty() || j.size() > 8) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": expected a non-empty shape array"));
  }
  std::vector<int64_t> shape;
  for (const auto& d : j) {
    if (!d.is_number_integer() || d.get<int64_t>() <= 0 || d.get<int64_t>() > (1 << 20)) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": dimensions must be positive integers"));
    }
    shape.push_back(d.get<int64_t>());
  }
  return shape;
}

std::string Resolve(const std::string& dir, const std::string& file) {
  if (file.empty()) return "";
  fs::path p(file);
  return p.is_absolute() ? file : (fs::path(dir) / p).string();
}

}  // namespace

int64_t ModelManifest::InputElements() const {
  int64_t n = 1;
  for (int64_t d : input_shape) n *= d;
  return n;
}

absl::StatusOr<const SplitSpec*> ModelManifest::FindSplit(const std::string& split) const {
  const std::string& key = split.empty() ? default_split : split;
  auto it = splits.find(key);
  if (it == splits.end()) {
    std::vector<std::string> names;
    for (const auto& [n, s] : splits) names.push_back(n);
    return absl::NotFoundError(absl::StrCat("model '", name, "' has no split '", key,
                                            "' (valid: ", absl::StrJoin(names, ", "), ")"));
  }
  return &it->second;
}

absl::StatusOr<ModelManifest> ParseManifest(const std::string& text, const std::string& dir) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(dir, "/manifest.json: not a JSON object"));
  }
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat(dir, "/manifest.json: ", why));
  };
  try {
    ModelManifest m;
    m.dir = dir;
    m.name = j.at("name").get<std::string>();
    m.version = j.at("version").get<int64_t>();
    m.platform = j.value("platform", "torchscript");
    if (m.platform != "torchscript") return bad("platform must be 'torchscript'");
    const json& in = j.at("input");
    auto ishape = ShapeField(in.at("shape"), "input.shape");
    if (!ishape.ok()) return bad(std::string(ishape.status().message()));
    m.input_shape = *ishape;
    const std::string dtype = in.value("dtype", "FP32");
    const std::string kind = in.value("kind", dtype == "INT64" ? "tokens" : "image");
    if (dtype != "FP32" && dtype != "INT64") {
      return bad(absl::StrCat("input.dtype must be FP32 (images) or INT64 (tokens), got '", dtype, "'"));
    }
    if (kind != "image" && kind != "tokens") {
      return bad(absl::StrCat("input.kind must be 'image' or 'tokens', got '", kind, "'"));
    }
    if ((kind == "tokens") != (dtype == "INT64")) {
      return bad(absl::StrCat("input.kind '", kind, "' needs input.dtype ", kind == "tokens" ? "INT64" : "FP32",
                              ", got ", dtype));
    }
    if (kind == "tokens") {
      m.input_kind = InputKind::kTokens;
      if (m.input_shape.size() != 1) return bad("input.shape of a token model must be [T]");
      for (const char* key : {"mean", "std", "color"}) {
        if (in.contains(key)) return bad(absl::StrCat("input.", key, " applies to image inputs, not tokens"));
      }
      if (!in.contains("vocab") || !in.at("vocab").is_number_integer()) {
        return bad("input.vocab (the number of token ids) is required for a token model");
      }
      m.vocab = in.at("vocab").get<int64_t>();
      if (m.vocab < 1 || m.vocab > (int64_t{1} << 24)) return bad("input.vocab must be in [1, 2^24]");
    } else {
      if (m.input_shape.size() != 3) return bad("input.shape must be [C, H, W]");
      if (in.contains("vocab")) return bad("input.vocab applies to token inputs, not images");
      m.mean = in.value("mean", std::vector<float>{0.f});
      m.std = in.value("std", std::vector<float>{1.f});
      const int64_t c = m.input_shape[0];
      if (c != 1 && c != 3) return bad("input channels must be 1 or 3");
      for (auto* v : {&m.mean, &m.std}) {
        if (v->size() == 1 && c > 1) v->resize(c, v->front());
        if (static_cast<int64_t>(v->size()) != c) return bad("input.mean/std need one value per channel");
      }
      for (float s : m.std) {
        if (!(s > 0)) return bad("input.std must be positive");
      }
      m.color = in.value("color", c == 1 ? "grayscale" : "rgb");
      if ((m.color == "grayscale") != (c == 1)) return bad("input.color does not match the channels");
    }
    auto oshape = ShapeField(j.at("output").at("shape"), "output.shape");
    if (!oshape.ok()) return bad(std::string(oshape.status().message()));
    m.output_shape = *oshape;
    m.labels = j.at("labels").get<std::vector<std::string>>();
    if (m.output_shape.size() != 1 || m.output_shape[0] != static_cast<int64_t>(m.labels.size())) {
      return bad("output.shape must be [num_labels]");
    }
    if (m.IsTokens() && m.vocab != static_cast<int64_t>(m.labels.size())) {
      return bad(absl::StrCat("input.vocab (", m.vocab, ") must equal the number of labels (", m.labels.size(),
                              "): label i names token id i"));
    }
    m.full_path = Resolve(dir, j.value("full", ""));
    for (const auto& [name, s] : j.at("splits").items()) {
      SplitSpec spec;
      spec.name = name;
      spec.head_path = Resolve(dir, s.at("head").get<std::string>());
      spec.tail_path = Resolve(dir, s.at("tail").get<std::string>());
      auto fshape = ShapeField(s.at("feature_shape"), "feature_shape");
      if (!fshape.ok()) return bad(absl::StrCat("splits.", name, ": ", fshape.status().message()));
      spec.feature_shape = *fshape;
      m.splits.emplace(name, std::move(spec));
    }
    if (m.splits.empty()) return bad("no splits");
    m.default_split = j.value("default_split", m.splits.begin()->first);
    if (!m.splits.count(m.default_split)) return bad("default_split is not one of the splits");
    return m;
  } catch (const json::exception& e) {
    return bad(e.what());
  }
}

absl::StatusOr<ModelManifest> LoadManifest(const std::string& version_dir) {
  std::ifstream f(fs::path(version_dir) / "manifest.json");
  if (!f) return absl::NotFoundError(absl::StrCat(version_dir, "/manifest.json: cannot open"));
  std::stringstream ss;
  ss << f.rdbuf();
  return ParseManifest(ss.str(), version_dir);
}

absl::StatusOr<ModelRepository> ModelRepository::Load(const std::string& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    return absl::NotFoundError(absl::StrCat("model repository '", root, "' is not a directory"));
  }
  ModelRepository repo;
  repo.root_ = root;
  for (const auto& model_dir : fs::directory_iterator(root, ec)) {
    if (!model_dir.is_directory()) continue;
    const std::string model = model_dir.path().filename().string();
    for (const auto& vdir : fs::directory_iterator(model_dir.path(), ec)) {
      const std::string vname = vdir.path().filename().string();
      if (!vdir.is_directory() || vname.empty() ||
          vname.find_first_not_of("0123456789") != std::string::npos || vname.size() > 9) {
        continue;
      }
      if (!fs::exists(vdir.path() / "manifest.json")) continue;
      auto m = LoadManifest(vdir.path().string());
      if (!m.ok()) return m.status();
      if (m->name != model || m->version != std::stoll(vname)) {
        return absl::InvalidArgumentError(
            absl::StrCat(vdir.path().string(), "/manifest.json: name/version (", m->name, "/",
                         m->version, ") do not match the directory"));
      }
      repo.models_[model].emplace(m->version, std::move(*m));
    }
  }
  if (ec) return absl::InternalError(absl::StrCat("scanning '", root, "': ", ec.message()));
  if (repo.models_.empty()) {
    return absl::NotFoundError(absl::StrCat("no <model>/<version>/manifest.json under '", root, "'"));
  }
  return repo;
}

absl::StatusOr<ModelRepository::Resolved> ModelRepository::Resolve(const std::string& model,
                                                                   const std::string& version,
                                                                   const std::string& split) const {
  auto manifest = Find(model, version);
  if (!manifest.ok()) return manifest.status();
  auto s = (*manifest)->FindSplit(split);
  if (!s.ok()) return s.status();
  return Resolved{*manifest, *s};
}

absl::StatusOr<const ModelManifest*> ModelRepository::Find(const std::string& model,
                                                           const std::string& version) const {
  auto it = models_.find(model);
  if (it == models_.end() || it->second.empty()) {
    return absl::NotFoundError(absl::StrCat("unknown model '", model, "'"));
  }
  if (version.empty() || version == "0") return &it->second.rbegin()->second;
  int64_t v = 0;
  if (version.size() > 9 || version.find_first_not_of("0123456789") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("bad model version '", version, "'"));
  }
  v = std::stoll(version);
  auto vit = it->second.find(v);
  if (vit == it->second.end()) {
    return absl::NotFoundError(absl::StrCat("model '", model, "' has no version ", version));
  }
  return &vit->second;
}

std::vector<std::string> ModelRepository::ModelNames() const {
  std::vector<std::string> names;
  for (const auto& [n, v] : models_) names.push_back(n);
  return names;
}

std::vector<const ModelManifest*> ModelRepository::All() const {
  std::vector<const ModelManifest*> all;
  for (const auto& [n, versions] : models_) {
    for (const auto& [v, m] : versions) all.push_back(&m);
  }
  return all;
}

}  // namespace splitrans
