// The one exception type of lowbit. Its message names the file, field or offset at fault;
// the CLI prints it as a single line `lowbit: error: <message>` and exits nonzero.
#pragma once
#include <fmt/format.h>

#include <cstdio>
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

// A one-line notice on stderr (`lowbit: note: ...`) for a choice made on the user's behalf that changes what
// they asked for slightly (e.g. a group size adjusted to a tensor's row length).
template <typename... Args>
void note(fmt::format_string<Args...> f, Args&&... args) {
  fmt::print(stderr, "lowbit: note: {}\n", fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace lowbit
