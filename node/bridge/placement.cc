// SPDX-License-Identifier: Apache-2.0
#include "node/bridge/placement.h"

namespace mqtt::bridge {
namespace {

uint64_t Fnv1a(uint64_t h, std::string_view s) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

// splitmix64's finaliser: FNV's low bits alone spread poorly over similar node ids.
uint64_t Mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

uint64_t RendezvousWeight(std::string_view bridge, std::string_view node) {
  uint64_t h = Fnv1a(0xcbf29ce484222325ULL, bridge);
  h = Fnv1a(h, std::string_view("\0", 1));
  return Mix(Fnv1a(h, node));
}

std::string RendezvousOwner(std::string_view bridge, const std::vector<std::string>& alive_nodes) {
  const std::string* best = nullptr;
  uint64_t best_weight = 0;
  for (const std::string& node : alive_nodes) {
    const uint64_t w = RendezvousWeight(bridge, node);
    // Ties (astronomically rare) go to the smaller id, so that every node agrees.
    if (best == nullptr || w > best_weight || (w == best_weight && node < *best)) {
      best = &node;
      best_weight = w;
    }
  }
  return best == nullptr ? std::string() : *best;
}

}  // namespace mqtt::bridge
