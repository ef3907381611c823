// Tests for IpIndex: the open-addressing IP -> intervals index behind pod by
// IP and flow enrichment. Checked against a plain map over many addresses
// (growth and probing), and for reuse, dual-stack, IPv6 and the nearest
// intervals around a miss.
#include "state/ip_index.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

namespace annals::state {
namespace {

IpKey Ip(const std::string& s) {
  auto ip = ParseIp(s);
  EXPECT_TRUE(ip.has_value()) << s;
  return ip.value_or(IpKey{});
}

IpInterval Iv(const IpKey& ip, Micros start, Micros end, uint32_t pod) {
  IpInterval iv;
  iv.ip = ip;
  iv.start = start;
  iv.end = end;
  iv.pod = pod;
  iv.start_index = pod * 10;
  iv.end_index = end == kNever ? 0 : pod * 10 + 1;
  return iv;
}

TEST(IpIndex, EmptyIndexFindsNothing) {
  IpIndex index;
  const IpInterval *before = reinterpret_cast<const IpInterval*>(1), *after = before;
  EXPECT_EQ(index.Lookup(Ip("10.0.0.1"), 5, &before, &after), nullptr);
  EXPECT_EQ(before, nullptr);
  EXPECT_EQ(after, nullptr);
  EXPECT_EQ(index.Find(Ip("fd00::1")), nullptr);
  EXPECT_EQ(index.size(), 0u);
}

TEST(IpIndex, ReusedAddressAnswersThePodOfEachTime) {
  IpIndex index;
  const IpKey ip = Ip("10.244.1.2");
  auto& list = index.Intervals(ip);
  list.push_back(Iv(ip, 100, 200, 1));  // a Job pod until it completed
  list.push_back(Iv(ip, 250, kNever, 2));  // the next pod, still running
  EXPECT_EQ(index.Lookup(ip, 99, nullptr, nullptr), nullptr);
  EXPECT_EQ(index.Lookup(ip, 100, nullptr, nullptr)->pod, 1u);
  EXPECT_EQ(index.Lookup(ip, 199, nullptr, nullptr)->pod, 1u);
  EXPECT_EQ(index.Lookup(ip, 200, nullptr, nullptr), nullptr);  // [start, end)
  EXPECT_EQ(index.Lookup(ip, 250, nullptr, nullptr)->pod, 2u);
  EXPECT_EQ(index.Lookup(ip, 1000000, nullptr, nullptr)->pod, 2u);
}

TEST(IpIndex, MissNamesTheNearestIntervalsBeforeAndAfter) {
  IpIndex index;
  const IpKey ip = Ip("10.244.1.2");
  auto& list = index.Intervals(ip);
  list.push_back(Iv(ip, 100, 200, 1));
  list.push_back(Iv(ip, 300, 400, 2));
  list.push_back(Iv(ip, 500, 600, 3));
  const IpInterval *before, *after;
  EXPECT_EQ(index.Lookup(ip, 450, &before, &after), nullptr);
  ASSERT_NE(before, nullptr);
  ASSERT_NE(after, nullptr);
  EXPECT_EQ(before->pod, 2u);
  EXPECT_EQ(after->pod, 3u);
  EXPECT_EQ(index.Lookup(ip, 50, &before, &after), nullptr);
  EXPECT_EQ(before, nullptr);
  EXPECT_EQ(after->pod, 1u);
  EXPECT_EQ(index.Lookup(ip, 700, &before, &after), nullptr);
  EXPECT_EQ(before->pod, 3u);
  EXPECT_EQ(after, nullptr);
  // A hit still names what came before it and what comes next.
  EXPECT_EQ(index.Lookup(ip, 350, &before, &after)->pod, 2u);
  EXPECT_EQ(before->pod, 1u);
  EXPECT_EQ(after->pod, 3u);
}

TEST(IpIndex, DualStackPodIsFoundByEitherAddressAndFamiliesDoNotMix) {
  IpIndex index;
  const IpKey v4 = Ip("10.244.3.3"), v6 = Ip("fd00:10:244:3::3");
  // ::af4:303 (::10.244.3.3, "IPv4-compatible") is another address.
  const IpKey compat = Ip("::af4:303");
  index.Intervals(v4).push_back(Iv(v4, 10, 20, 7));
  index.Intervals(v6).push_back(Iv(v6, 10, 20, 7));
  EXPECT_EQ(index.Lookup(v4, 15, nullptr, nullptr)->pod, 7u);
  EXPECT_EQ(index.Lookup(v6, 15, nullptr, nullptr)->pod, 7u);
  EXPECT_EQ(index.Lookup(compat, 15, nullptr, nullptr), nullptr);
  EXPECT_EQ(index.Lookup(Ip("::ffff:10.244.3.3"), 15, nullptr, nullptr)->pod, 7u);  // mapped = v4
  EXPECT_EQ(index.size(), 2u);
  uint32_t x;
  EXPECT_TRUE(IsV4(v4, &x));
  EXPECT_EQ(x, (10u << 24) | (244u << 16) | (3u << 8) | 3u);
  EXPECT_FALSE(IsV4(v6, &x));
  EXPECT_FALSE(IsV4(compat, &x));
}

TEST(IpIndex, AgreesWithAMapOverManyAddressesOfBothFamilies) {
  // Enough addresses to grow both tables several times; addresses that
  // differ only in the bytes a weak hash would drop.
  IpIndex index;
  std::map<IpKey, std::vector<IpInterval>> want;
  std::mt19937_64 rng(3);
  for (uint32_t i = 0; i < 20000; ++i) {
    IpKey ip{};
    if (i % 3 == 0) {
      ip = Ip("fd00::");
      ip[15] = static_cast<uint8_t>(i);
      ip[14] = static_cast<uint8_t>(i >> 8);
      ip[7] = static_cast<uint8_t>(rng() % 2);
    } else {
      ip = Ip("10.0.0.0");
      ip[14] = static_cast<uint8_t>(i);
      ip[13] = static_cast<uint8_t>(i >> 8);
    }
    const Micros start = static_cast<Micros>(rng() % 1000);
    auto& got = index.Intervals(ip);
    auto& w = want[ip];
    const Micros from = got.empty() ? start : got.back().end + 1;
    got.push_back(Iv(ip, from, from + 10, i));
    w.push_back(got.back());
  }
  EXPECT_EQ(index.size(), want.size());
  for (const auto& [ip, list] : want) {
    const auto* got = index.Find(ip);
    ASSERT_NE(got, nullptr);
    ASSERT_EQ(got->size(), list.size());
    for (const auto& iv : list) {
      const IpInterval* hit = index.Lookup(ip, iv.start + 5, nullptr, nullptr);
      ASSERT_NE(hit, nullptr);
      EXPECT_EQ(hit->pod, iv.pod);
    }
  }
  EXPECT_EQ(index.Find(Ip("10.255.255.255")), nullptr);
  EXPECT_EQ(index.Find(Ip("fd00::1:0:0:ffff")), nullptr);
}

TEST(IpIndex, ListsSurviveGrowthAndCanBeEmptied) {
  IpIndex index;
  const IpKey first = Ip("192.0.2.1");
  index.Intervals(first).push_back(Iv(first, 1, 2, 1));
  for (uint32_t i = 0; i < 5000; ++i) {
    IpKey ip = Ip("198.18.0.0");
    ip[14] = static_cast<uint8_t>(i >> 8);
    ip[15] = static_cast<uint8_t>(i);
    index.Intervals(ip);
  }
  ASSERT_NE(index.Lookup(first, 1, nullptr, nullptr), nullptr);
  index.Intervals(first).clear();
  EXPECT_EQ(index.Lookup(first, 1, nullptr, nullptr), nullptr);
  ASSERT_NE(index.Find(first), nullptr);  // the address stays, with no intervals
  EXPECT_TRUE(index.Find(first)->empty());
}

}  // namespace
}  // namespace annals::state
