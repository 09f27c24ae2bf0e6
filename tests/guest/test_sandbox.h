// Small helpers shared by the guest tests that drive brig::Sandbox directly.
#ifndef BRIG_TESTS_GUEST_TEST_SANDBOX_H_
#define BRIG_TESTS_GUEST_TEST_SANDBOX_H_

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "brig/sandbox.h"

namespace brig::testing {

// A new sandbox (null, with a test failure, if it cannot be made).
inline std::unique_ptr<brig::Sandbox> New(const brig::Limits& limits = {}) {
  auto s = brig::Sandbox::Create(limits);
  EXPECT_TRUE(s.ok()) << s.status().message();
  return s.ok() ? std::move(s.value()) : nullptr;
}

// The repr of `code`'s final expression ("<none>" without one); a test failure unless it ran ok.
inline std::string Eval(brig::Sandbox& s, const std::string& code) {
  brig::ExecutionResult r = s.Execute(code);
  EXPECT_TRUE(r.ok) << code << "\n" << r.stderr_text << r.failure_message;
  return r.result.value_or("<none>");
}

}  // namespace brig::testing

#endif  // BRIG_TESTS_GUEST_TEST_SANDBOX_H_
