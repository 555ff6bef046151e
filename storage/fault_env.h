// SPDX-License-Identifier: Apache-2.0
// A rocksdb::Env whose writable files consult a StorageFaults before each write. Internal to
// storage/ (see faults.h).
#pragma once

#include <memory>

#include "rocksdb/env.h"
#include "storage/faults.h"

namespace mqtt::storage {

std::unique_ptr<rocksdb::Env> NewFaultInjectionEnv(std::shared_ptr<StorageFaults> faults);

}  // namespace mqtt::storage
