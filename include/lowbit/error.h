// The one exception type of lowbit. Its message names the file, field or offset at fault;
// the CLI prints it as a single line `lowbit: error: <message>` and exits nonzero.
#pragma once
#include <fmt/format.h>
#include <stdexcept>
#include <string>

namespace lowbit {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace lowbit
