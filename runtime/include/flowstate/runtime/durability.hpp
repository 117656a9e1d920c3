#pragma once
// How a project's commits reach disk (flowstate.yaml `durability:`); shared by
// the project model and the store without pulling either into the other.

namespace flowstate {

// sync: acknowledged after an fsync (group commit). relaxed: acknowledged once
// written to the OS; a process crash loses nothing, a machine crash may.
enum class durability_mode { sync, relaxed };

}  // namespace flowstate
