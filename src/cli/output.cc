#include "cli/output.h"

#include <iostream>

#include "cli/commands.h"

namespace brig::cli {

void PrintError(const std::string& message) {
  std::string line = message;
  for (char& c : line) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  std::cerr << "brig: " << line << "\n";
}

int ReportFailure(const Status& s) {
  PrintError(s.message());
  return s.IsInvalidArgument() ? kExitUsage : kExitFailure;
}

void PrintJson(const nlohmann::json& j) {
  std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

}  // namespace brig::cli
