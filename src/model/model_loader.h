// The friend of Model that fills its private members: from a GGUF file (model.cc) or a .lbt bundle
// (model_bundle.cc), and writes bundles.
#pragma once
#include <memory>
#include <string>

#include "lowbit/model.h"

namespace lowbit {

class ModelLoader {
 public:
  static std::shared_ptr<Model> from_gguf(const std::string& path, const LoadOptions& options);
  static std::shared_ptr<Model> from_bundle(const std::string& path);
};

// True if the file starts with the .lbt magic.
bool is_bundle_file(const std::string& path);

}  // namespace lowbit
