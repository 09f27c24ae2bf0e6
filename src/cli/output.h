// How every brig command reports: errors as one line "brig: ..." on stderr, JSON as one line
// on stdout.
#ifndef BRIG_CLI_OUTPUT_H_
#define BRIG_CLI_OUTPUT_H_

#include <nlohmann/json.hpp>
#include <string>

#include "brig/status.h"

namespace brig::cli {

// Prints "brig: <message>" (control characters turned into spaces: one line, no terminal
// codes from stored data) and returns the exit status for it: kExitUsage for
// InvalidArgument, else kExitFailure.
int ReportFailure(const Status& s);
// Prints "brig: <message>" the same way.
void PrintError(const std::string& message);
// Prints `j` as one line; invalid UTF-8 in strings is replaced, never an exception.
void PrintJson(const nlohmann::json& j);

}  // namespace brig::cli

#endif  // BRIG_CLI_OUTPUT_H_
