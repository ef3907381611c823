#include "common/status.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <memory>
#include <string>

namespace annals {
namespace {

StatusOr<int> Half(int v) {
  if (v % 2) return InvalidArgumentError(std::to_string(v) + " is odd");
  return v / 2;
}

StatusOr<int> Quarter(int v) {
  ASSIGN_OR_RETURN(int h, Half(v));
  ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

Status CheckEven(int v) {
  RETURN_IF_ERROR(Half(v).status());
  return OkStatus();
}

TEST(StatusTest, OkAndErrorsCarryCodeAndMessage) {
  EXPECT_TRUE(OkStatus().ok());
  EXPECT_EQ(OkStatus().ToString(), "OK");
  Status s = DataLossError("entry 7: CRC mismatch");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_EQ(s.message(), "entry 7: CRC mismatch");
  EXPECT_EQ(s.ToString(), "DATA_LOSS: entry 7: CRC mismatch");
  EXPECT_EQ(NotFoundError("x").code(), StatusCode::kNotFound);
  EXPECT_EQ(ResourceExhaustedError("x").ToString(), "RESOURCE_EXHAUSTED: x");
}

TEST(StatusTest, ErrnoErrorMapsEnoentToNotFound) {
  EXPECT_EQ(ErrnoError("open f", ENOENT).code(), StatusCode::kNotFound);
  Status s = ErrnoError("write f", EIO);
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_EQ(s.message().rfind("write f: ", 0), 0u) << s.message();
}

TEST(StatusTest, ErrnoErrorMapsAFullDiskToResourceExhausted) {
  EXPECT_EQ(ErrnoError("write f", ENOSPC).code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(ErrnoError("write f", EDQUOT).code(), StatusCode::kResourceExhausted);
}

TEST(StatusTest, MacrosPropagateTheFirstError) {
  EXPECT_EQ(*Quarter(12), 3);
  StatusOr<int> r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "3 is odd");
  EXPECT_TRUE(CheckEven(4).ok());
  EXPECT_EQ(CheckEven(5).code(), StatusCode::kInvalidArgument);
}

TEST(StatusTest, StatusOrHoldsMoveOnlyValues) {
  StatusOr<std::unique_ptr<int>> p(std::make_unique<int>(5));
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p.status().ok());
  std::unique_ptr<int> v = std::move(p).value();
  EXPECT_EQ(*v, 5);
}

}  // namespace
}  // namespace annals
