// Python behaviour as data: every *.test file under tests/guest/cases holds cases, each run in
// a fresh sandbox through the real engine. Format:
//
//   ### case: NAME
//   <python code>
//   >>> stdout            (exact expected stdout follows)
//   >>> stdout-contains   (each following line must appear in stdout)
//   >>> stderr-contains   (each following line must appear in stderr)
//   >>> result            (exact repr of the last expression; "None" for no result)
//   >>> error             (exception type name; "None" for no exception)
//   >>> error-message     (ECMAScript regex that must match all of str(exception); needs
//                          `>>> error` too, so that a message never stands for its type)
//   >>> failure           (none | trap | exit | timeout | guest_error)
//   >>> ok                (true | false)
//   >>> then              (more code for the same sandbox; what follows checks its outcome,
//                          e.g. that the sandbox still works after the first part)
//
// A case without `>>> ok` expects ok == (error is None and failure is none).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "brig/sandbox.h"

namespace {

struct Check {
  std::string kind;
  std::string body;
};

struct Step {
  std::string code;
  std::vector<Check> checks;
};

struct Case {
  std::string file;
  std::string name;
  std::vector<Step> steps;
};

std::string Trim(const std::string& s) {
  size_t end = s.size();
  while (end > 0 && (s[end - 1] == '\n' || s[end - 1] == ' ')) --end;
  return s.substr(0, end);
}

std::vector<Case> LoadCases() {
  std::vector<Case> cases;
  std::vector<std::filesystem::path> files;
  for (auto& entry : std::filesystem::directory_iterator(BRIG_CASES_DIR)) {
    if (entry.path().extension() == ".test") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (auto& path : files) {
    std::ifstream in(path);
    std::string line;
    Case* c = nullptr;
    std::string* target = nullptr;
    while (std::getline(in, line)) {
      if (line.rfind("### case: ", 0) == 0) {
        cases.push_back(Case{path.filename().string(), line.substr(10), {Step{}}});
        c = &cases.back();
        target = &c->steps.back().code;
      } else if (c && line.rfind(">>> ", 0) == 0) {
        std::string kind = line.substr(4);
        if (kind == "then") {
          c->steps.push_back(Step{});
          target = &c->steps.back().code;
        } else {
          c->steps.back().checks.push_back(Check{kind, ""});
          target = &c->steps.back().checks.back().body;
        }
      } else if (target) {
        *target += line + "\n";
      }
    }
  }
  return cases;
}

// Names the case in gtest's messages instead of dumping its bytes.
void PrintTo(const Case& c, std::ostream* os) { *os << c.file << ": " << c.name; }

class PythonCase : public ::testing::TestWithParam<Case> {};

TEST_P(PythonCase, Runs) {
  const Case& c = GetParam();
  auto sandbox = brig::Sandbox::Create();
  ASSERT_TRUE(sandbox.ok()) << sandbox.status().message();
  for (size_t i = 0; i < c.steps.size(); ++i) {
    const Step& step = c.steps[i];
    SCOPED_TRACE(c.file + ": " + c.name + " step " + std::to_string(i + 1));
    brig::ExecutionResult r = sandbox.value()->Execute(step.code);
    std::string context = "stdout: " + r.stdout_text + "\nstderr: " + r.stderr_text +
                          "\nfailure: " + std::string(brig::FailureName(r.failure)) + " " + r.failure_message;
    bool checked_ok = false;
    bool checked_error = false;
    for (const Check& check : step.checks) {
      std::string body = Trim(check.body);
      if (check.kind == "stdout") {
        EXPECT_EQ(Trim(r.stdout_text), body) << context;
      } else if (check.kind == "stdout-contains" || check.kind == "stderr-contains") {
        const std::string& hay = check.kind == "stdout-contains" ? r.stdout_text : r.stderr_text;
        std::istringstream lines(body);
        std::string want;
        while (std::getline(lines, want)) EXPECT_NE(hay.find(want), std::string::npos) << "missing: " << want << "\n" << context;
      } else if (check.kind == "result") {
        EXPECT_EQ(r.result.value_or("None"), body) << context;
      } else if (check.kind == "error") {
        checked_error = true;
        EXPECT_EQ(r.error ? r.error->type : "None", body) << context;
      } else if (check.kind == "error-message") {
        EXPECT_TRUE(r.error && std::regex_match(r.error->message, std::regex(body)))
            << "message " << (r.error ? "'" + r.error->message + "'" : "(no exception)") << " does not match /"
            << body << "/\n" << context;
      } else if (check.kind == "failure") {
        EXPECT_EQ(std::string(brig::FailureName(r.failure)), body) << context;
      } else if (check.kind == "ok") {
        checked_ok = true;
        EXPECT_EQ(r.ok ? "true" : "false", body) << context;
      } else {
        ADD_FAILURE() << "unknown check kind " << check.kind;
      }
    }
    if (!checked_ok) {
      EXPECT_EQ(r.ok, !r.error && r.failure == brig::Failure::kNone) << context;
    }
    bool has_message = std::any_of(step.checks.begin(), step.checks.end(),
                                   [](const Check& k) { return k.kind == "error-message"; });
    EXPECT_TRUE(!has_message || checked_error) << "`>>> error-message` without `>>> error`";
  }
}

std::string CaseName(const ::testing::TestParamInfo<Case>& info) {
  std::string name = info.param.file.substr(0, info.param.file.find('.')) + "_" + info.param.name;
  for (char& ch : name) {
    if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(Cases, PythonCase, ::testing::ValuesIn(LoadCases()), CaseName);

}  // namespace
