// lull::forecast::InactivityLstm - a small recurrent classifier of coming lulls.
//
// Question it answers: P(the series stays below `level` for each of the next W steps),
// the same as MarkovChain::ProbStayBelow, so the two can be compared (Brier score) and
// the better one used. Structure: one LSTM cell (H <= kMaxHidden units) reads one
// sample per step, u_t; a head with kHead tanh units reads [h_t, level, W/12, u_t-level]
// and a sigmoid gives the probability. The recurrent state does not depend on the
// question, so one streaming state per series answers any (level, W).
//
// Training (Train) is our own code: truncated backpropagation through time over chunks
// of `bptt` steps with the state carried across chunks, binary cross-entropy at every
// step for randomly drawn (level, W) questions, Adam. Weights are immutable after
// training or Load and shared by all series (State is the only per-series part).
// Save/Load use a plain text format with a header line, so a truncated or foreign file
// is reported as Corruption naming the file.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "forecast/status.h"

namespace lull::forecast {

struct LstmTrainConfig {
  int hidden = 12;
  int bptt = 24;
  int epochs = 3;
  double learning_rate = 3e-3;
  std::vector<double> levels = {0.02, 0.05, 0.1, 0.2, 0.3, 0.5};
  std::vector<int> windows = {1, 3, 6, 12};
  unsigned seed = 7;
  size_t max_steps = 2'000'000;  // budget of training steps over all epochs
};

struct LstmTrainReport {
  std::vector<double> epoch_loss;  // mean binary cross-entropy per epoch
  size_t steps = 0;
};

class InactivityLstm {
 public:
  static constexpr int kMaxHidden = 16;
  static constexpr int kHead = 8;
  struct State {
    std::array<float, kMaxHidden> h{}, c{};
    float u = 0;
  };

  InactivityLstm();  // untrained: random weights (a test can check training helps)
  int hidden() const { return hidden_; }
  void Step(State* s, double u) const;
  double Prob(const State& s, double level, int window) const;

  // Trains on the given series (values as fractions, no NaN: callers impute first).
  Status Train(const std::vector<std::vector<double>>& series, const LstmTrainConfig& cfg,
               LstmTrainReport* report);
  Status Save(const std::string& path) const;
  Status Load(const std::string& path);

 private:
  // Inference copy of the weights in float, padded to kMaxHidden units per gate so that
  // Step is one fixed-size matrix-vector product over [h, u, 1] for all four gates
  // (SIMD, no heap) and Prob one over [h, level, W/12, u - level, 1]. Padded rows and
  // columns are zero, so padded units stay at h = c = 0. Rebuilt by Pack() whenever w_
  // changes (constructor, Train, Load).
  static constexpr int kGateRows = 4 * kMaxHidden, kGateCols = kMaxHidden + 2;
  static constexpr int kHeadCols = kMaxHidden + 4;
  void Pack();

  int hidden_;
  std::vector<double> w_;  // all parameters, flat; layout in lstm.cpp
  alignas(16) std::array<float, kGateRows * kGateCols> gates_{};  // column-major
  alignas(16) std::array<float, kHead * kHeadCols> head_{};       // column-major
  alignas(16) std::array<float, kHead> v2_{};
  float c2_ = 0;
};

}  // namespace lull::forecast
