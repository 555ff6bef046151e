// SPDX-License-Identifier: Apache-2.0
// Where a bridge runs in a cluster: on exactly one node, chosen by rendezvous (highest random
// weight) hashing of the bridge's name over the alive members, so that every node that sees the
// same members picks the same owner, and a member joining or leaving moves only the bridges it
// wins or held. The hash is FNV-1a 64 over "name\0node" with a final mix: the same on every
// node and build (std::hash is not).
//
// Pure: any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mqtt::bridge {

uint64_t RendezvousWeight(std::string_view bridge, std::string_view node);

// The owner of `bridge` among `alive_nodes` (node ids); empty when there is none.
std::string RendezvousOwner(std::string_view bridge, const std::vector<std::string>& alive_nodes);

}  // namespace mqtt::bridge
