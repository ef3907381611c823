// GoogleTest helpers for Status and StatusOr.
#ifndef ANNALS_TEST_TESTUTIL_TEST_MACROS_H_
#define ANNALS_TEST_TESTUTIL_TEST_MACROS_H_

#include <gtest/gtest.h>

#include "common/status.h"

namespace annals::testutil {
inline const Status& ToStatus(const Status& s) { return s; }
template <typename T>
Status ToStatus(const StatusOr<T>& s) {
  return s.status();
}
}  // namespace annals::testutil

#define ASSERT_OK(expr)                                                       \
  do {                                                                        \
    const ::annals::Status annals_t_s_ = ::annals::testutil::ToStatus(expr);  \
    ASSERT_TRUE(annals_t_s_.ok()) << #expr << ": " << annals_t_s_.ToString(); \
  } while (0)

#define EXPECT_OK(expr)                                                       \
  do {                                                                        \
    const ::annals::Status annals_t_s_ = ::annals::testutil::ToStatus(expr);  \
    EXPECT_TRUE(annals_t_s_.ok()) << #expr << ": " << annals_t_s_.ToString(); \
  } while (0)

#define ASSERT_OK_AND_ASSIGN_IMPL(tmp, lhs, expr)                    \
  auto tmp = (expr);                                                 \
  ASSERT_TRUE(tmp.ok()) << #expr << ": " << tmp.status().ToString(); \
  lhs = std::move(tmp).value()

#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  ASSERT_OK_AND_ASSIGN_IMPL(ANNALS_CONCAT(annals_t_so_, __LINE__), lhs, expr)

#endif  // ANNALS_TEST_TESTUTIL_TEST_MACROS_H_
