// lull::forecast::History - the recent samples of one series, shared by its models.
//
// A fixed-capacity ring of floats (no heap), newest last. Models that refit on a window
// (ARIMA, seasonal detection) read it instead of each keeping their own copy, which is
// what keeps a whole series under 16 KiB. Missing steps are stored as the value the
// forecaster imputed for them, so lag k always means "k control steps ago".
#pragma once

#include <array>
#include <cstddef>

namespace lull::forecast {

class History {
 public:
  static constexpr size_t kCapacity = 640;  // > 2 days of 5-min samples: daily periods fit

  void Push(double x) {
    buf_[head_] = static_cast<float>(x);
    head_ = (head_ + 1) % kCapacity;
    if (size_ < kCapacity) ++size_;
  }
  size_t size() const { return size_; }
  // lag 0 = newest sample; lag < size().
  double Lag(size_t lag) const {
    return buf_[(head_ + kCapacity - 1 - lag) % kCapacity];
  }
  // Copies the newest n (<= size()) samples, oldest first, into out.
  void CopyLast(size_t n, double* out) const {
    for (size_t i = 0; i < n; ++i) out[i] = Lag(n - 1 - i);
  }
  void Clear() { size_ = 0; head_ = 0; }

 private:
  std::array<float, kCapacity> buf_{};
  size_t head_ = 0;
  size_t size_ = 0;
};

}  // namespace lull::forecast
