// A log-linear latency histogram in the HdrHistogram style: exact below 256 ns, then 128 linear sub-buckets per
// power of two (relative error < 1/128 < 1%), from 1 ns to 10 s (larger values are clamped into the top bucket).
// Fixed size, no allocation while recording: it lives inside an endpoint's loop.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <utility>
#include <vector>

namespace macvtap {

class Histogram {
 public:
  static constexpr int kSubBits = 7;
  static constexpr uint64_t kSub = 1u << kSubBits;  // 128
  static constexpr uint64_t kMaxValue = 10'000'000'000ull;  // 10 s in ns
  static constexpr int kMaxShift = 27;  // 10 s < 2^34 = (2^7..2^8) << 26: shifts 1..26 used, one spare
  static constexpr size_t kBuckets = 2 * kSub + static_cast<size_t>(kMaxShift) * kSub;

  Histogram() : counts_(kBuckets, 0) {}

  static size_t IndexOf(uint64_t v) {
    if (v < 2 * kSub) return static_cast<size_t>(v);
    int msb = 63 - __builtin_clzll(v);
    int shift = msb - kSubBits;  // >= 1
    uint64_t mantissa = v >> shift;  // in [128, 255]
    return static_cast<size_t>(2 * kSub + static_cast<uint64_t>(shift - 1) * kSub + (mantissa - kSub));
  }

  /** The largest value that falls in bucket `i` (what percentiles report, HdrHistogram's "highest equivalent"). */
  static uint64_t UpperBound(size_t i) {
    if (i < 2 * kSub) return i;
    uint64_t j = i - 2 * kSub;
    int shift = static_cast<int>(j / kSub) + 1;
    uint64_t mantissa = kSub + j % kSub;
    return ((mantissa + 1) << shift) - 1;
  }

  void Record(uint64_t v) {
    if (v < 1) v = 1;
    if (v > kMaxValue) v = kMaxValue;
    ++counts_[IndexOf(v)];
    ++count_;
    sum_ += v;
    if (v < min_ || count_ == 1) min_ = v;
    if (v > max_) max_ = v;
  }

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ ? min_ : 0; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0; }

  /** The value at quantile q (0..1]: the upper bound of the bucket holding the ceil(q*count)-th value, ≤ max. */
  uint64_t Percentile(double q) const {
    if (count_ == 0) return 0;
    uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(count_) + 0.999999999);
    if (rank < 1) rank = 1;
    if (rank > count_) rank = count_;
    uint64_t seen = 0;
    for (size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank) {
        uint64_t ub = UpperBound(i);
        return ub > max_ ? max_ : (ub < min_ ? min_ : ub);
      }
    }
    return max_;
  }

  /** Non-empty buckets as (upper bound ns, count), ascending. */
  std::vector<std::pair<uint64_t, uint64_t>> Buckets() const {
    std::vector<std::pair<uint64_t, uint64_t>> out;
    for (size_t i = 0; i < counts_.size(); ++i) {
      if (counts_[i]) out.emplace_back(UpperBound(i), counts_[i]);
    }
    return out;
  }

 private:
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = 0;
  uint64_t max_ = 0;
};

}  // namespace macvtap
